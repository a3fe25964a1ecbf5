"""Archive sources: zip / tar / tar.gz extraction, re-extraction only on change, safety checks."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME
from pipeline.sources.archive import ArchiveLimits, sync_archive

LIMITS = ArchiveLimits(max_bytes=10_000_000, max_members=100)
NAMES = ["IDC/10253/0/a.png", "IDC/10253/1/b.png", "IDC/10254/0/c.png"]


def png(seed: int) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tf.addfile(info, io.BytesIO(data))
    return path


def add_tar_special(path: Path, info: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tf:
        tf.addfile(tarfile.TarInfo("ok/a.png"), io.BytesIO(b""))
        tf.addfile(info)
    return path


def raw_files(raw: Path) -> set[str]:
    return {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()} - {STATE_NAME}


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz", ".tgz"])
def test_each_archive_kind_is_mirrored(tmp_path, suffix):
    members = {n: png(i) for i, n in enumerate(NAMES)} | {"IDC/readme.txt": b"x", "__MACOSX/._a.png": b"x"}
    path = tmp_path / f"data{suffix}"
    if suffix == ".zip":
        make_zip(path, members)
    else:
        make_tar(path, members, "w" if suffix == ".tar" else "w:gz")
    raw = tmp_path / "raw"
    summary = sync_archive(path, raw, str(path), LIMITS)
    assert raw_files(raw) == set(NAMES) and summary.copied == 3
    assert all((raw / n).read_bytes() == members[n] for n in NAMES)


def test_unchanged_archive_is_not_reextracted_and_changes_are_incremental(tmp_path):
    members = {n: png(i) for i, n in enumerate(NAMES)}
    path = make_zip(tmp_path / "d.zip", members)
    raw = tmp_path / "raw"
    sync_archive(path, raw, "d.zip", LIMITS)
    keep_ino = (raw / NAMES[0]).stat().st_ino
    again = sync_archive(path, raw, "d.zip", LIMITS)
    assert (again.copied, again.unchanged, again.deleted) == (0, 3, 0)

    members[NAMES[1]] = png(99)
    del members[NAMES[2]]
    make_zip(path, members)
    third = sync_archive(path, raw, "d.zip", LIMITS)
    assert (third.copied, third.unchanged, third.deleted) == (1, 1, 1)
    assert (raw / NAMES[1]).read_bytes() == members[NAMES[1]]
    assert (raw / NAMES[0]).stat().st_ino == keep_ino
    assert raw_files(raw) == set(NAMES[:2])


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda p: make_zip(p.with_suffix(".zip"), {"../evil.png": png(1)}), "traversal"),
        (lambda p: make_zip(p.with_suffix(".zip"), {"/etc/evil.png": png(1)}), "absolute"),
        (lambda p: make_tar(p.with_suffix(".tar"), {"a/../../evil.png": png(1)}, "w"), "traversal"),
        (
            lambda p: add_tar_special(p.with_suffix(".tar"), _symlink("ok/l.png", "../../etc/passwd")),
            "outside",
        ),
        (lambda p: add_tar_special(p.with_suffix(".tar"), _symlink("ok/l.png", "/etc/passwd")), "outside"),
        (lambda p: add_tar_special(p.with_suffix(".tar"), _hardlink("ok/h.png", "../x")), "outside"),
        (lambda p: add_tar_special(p.with_suffix(".tar"), _device("ok/dev")), "device"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, build, why):
    path = build(tmp_path / "evil")
    raw = tmp_path / "sub" / "raw"
    with pytest.raises(DataError, match=f"unsafe member.*{why}") as err:
        sync_archive(path, raw, str(path), LIMITS)
    assert "\n" not in str(err.value)
    assert not raw.exists() and not (tmp_path / "evil.png").exists()
    assert not list(raw.parent.glob(".raw.staging-*"))


def test_zip_symlink_outside_is_refused(tmp_path):
    path = tmp_path / "l.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("a/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../etc/passwd")
        zf.writestr("a/ok.png", png(1))
    with pytest.raises(DataError, match="outside the archive"):
        sync_archive(path, tmp_path / "raw", "l.zip", LIMITS)


def test_size_and_member_limits(tmp_path):
    path = make_zip(tmp_path / "big.zip", {f"{i}.png": png(i) for i in range(5)})
    with pytest.raises(DataError, match="max_archive_members"):
        sync_archive(path, tmp_path / "raw", "big.zip", ArchiveLimits(10_000_000, 4))
    bomb = make_tar(tmp_path / "bomb.tar.gz", {"z.png": bytes(200_000)})
    with pytest.raises(DataError, match="max_archive_bytes"):
        sync_archive(bomb, tmp_path / "raw", "bomb.tar.gz", ArchiveLimits(100_000, 100))
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_corrupt_archive_keeps_previous_raw(tmp_path, suffix):
    good = make_zip(tmp_path / "good.zip", {n: png(i) for i, n in enumerate(NAMES)})
    raw = tmp_path / "raw"
    sync_archive(good, raw, "good.zip", LIMITS)
    bad = tmp_path / f"bad{suffix}"
    if suffix == ".zip":
        bad.write_bytes(good.read_bytes()[:-60])  # truncated central directory
    else:
        data = make_tar(tmp_path / "t.tar.gz", {n: png(i) for i, n in enumerate(NAMES)}).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        sync_archive(bad, raw, str(bad), LIMITS)
    assert raw_files(raw) == set(NAMES)


def test_archive_without_images(tmp_path):
    path = make_zip(tmp_path / "t.zip", {"a.txt": b"x"})
    with pytest.raises(DataError, match="no image files"):
        sync_archive(path, tmp_path / "raw", "t.zip", LIMITS)
