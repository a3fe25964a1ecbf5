"""pipeline/balancing/augment.py: random OpenCV augmentation, deterministic under a seeded Generator."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from pipeline.balancing import augment
from pipeline.config import AugmentConfig
from pipeline.core import images
from pipeline.core.errors import ConfigError

OFF = AugmentConfig(rotate_deg=0.0, hflip=False, shift_px_at_1024=0.0, blur_kernels=(1,))


def noisy(h: int = 40, w: int = 56, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(40, 56, 3), (33, 21, 1), (50, 50, 3)])
def test_shape_and_dtype_preserved(shape):
    img = noisy(*shape)
    for seed in range(5):
        out = augment.augment(img, np.random.default_rng(seed), AugmentConfig(blur_kernels=(1, 3, 5)))
        assert out.shape == img.shape
        assert out.dtype == np.uint8


def test_everything_disabled_is_identity_including_k1_blur():
    img = noisy()
    for seed in range(5):
        assert np.array_equal(augment.augment(img, np.random.default_rng(seed), OFF), img)


def test_blur_kernel_above_one_changes_a_noisy_image():
    img = noisy()
    out = augment.apply(img, augment.AugmentDraw(0.0, False, 0.0, 0.0, 3))
    assert not np.array_equal(out, img)
    assert np.array_equal(out, cv2.GaussianBlur(img, (3, 3), 0))


def test_flip_exactly_mirrors_when_rotation_and_shift_disabled():
    img = noisy(c=1)
    cfg = AugmentConfig(rotate_deg=0.0, hflip=True, shift_px_at_1024=0.0, blur_kernels=(1,))
    flipped = 0
    for seed in range(40):
        out = augment.augment(img, np.random.default_rng(seed), cfg)
        if np.array_equal(out, img[:, ::-1]):
            flipped += 1
        else:
            assert np.array_equal(out, img)
    assert 8 <= flipped <= 32  # p = 0.5 over 40 draws


def test_same_seed_same_output_and_different_seed_differs():
    img = noisy()
    cfg = AugmentConfig()
    a = augment.augment(img, np.random.default_rng(123), cfg)
    b = augment.augment(img, np.random.default_rng(123), cfg)
    c = augment.augment(img, np.random.default_rng(124), cfg)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("side", [50, 1024])
def test_draw_ranges_scale_shift_to_the_image_size(side):
    cfg = AugmentConfig(rotate_deg=25.0, shift_px_at_1024=50.0, blur_kernels=(1, 3))
    rng = np.random.default_rng(0)
    draws = [augment.draw(rng, cfg, side, side) for _ in range(300)]
    limit = 50.0 * side / 1024
    assert all(abs(d.angle_deg) <= 25.0 for d in draws)
    assert all(abs(d.shift_x) <= limit and abs(d.shift_y) <= limit for d in draws)
    assert max(abs(d.shift_x) for d in draws) > 0.8 * limit  # uses the range, not a constant
    assert {d.blur_kernel for d in draws} == {1, 3}


def test_rotation_uses_reflected_border_not_black_corners():
    img = np.full((40, 40, 1), 200, np.uint8)
    out = augment.apply(img, augment.AugmentDraw(20.0, False, 1.5, -1.5, 1))
    assert out.min() > 150  # constant border would leave zeros in the corners


def test_check_config_rejects_even_or_empty_kernels():
    with pytest.raises(ConfigError, match="blur_kernels"):
        augment.check_config(AugmentConfig(blur_kernels=(1, 4)))
    with pytest.raises(ConfigError, match="blur_kernels"):
        augment.check_config(AugmentConfig(blur_kernels=()))
    augment.check_config(AugmentConfig())


def test_write_png_keeps_rgb_order_and_returns_file_hash(tmp_path):
    img = noisy(c=3)
    img[0, 0] = (255, 0, 0)  # red in RGB
    size, digest = augment.write_png(img, tmp_path / "a" / "x.png")
    data = (tmp_path / "a" / "x.png").read_bytes()
    assert size == len(data) and digest == hashlib.sha256(data).hexdigest()
    back = images.read(tmp_path / "a" / "x.png", channels=3)
    assert np.array_equal(back, img)


def test_augment_file_keeps_gray_and_16_bit_depth(tmp_path):
    """A 16-bit source gives a 16-bit copy: the dataset's intensity window then maps both alike."""
    src = tmp_path / "g16.png"
    cv2.imwrite(str(src), (np.arange(30 * 20, dtype=np.uint16).reshape(30, 20) * 100))
    size, _, shape = augment.augment_file(
        src, tmp_path / "out.png", np.random.default_rng(1), AugmentConfig()
    )
    assert shape == (30, 20, 1)
    raw = images.decode_raw((tmp_path / "out.png").read_bytes())
    assert raw.dtype == np.uint16 and raw.ndim == 2 and size > 0
    assert raw.max() > 255
