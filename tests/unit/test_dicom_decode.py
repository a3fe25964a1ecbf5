"""pipeline.core.dicom: sniffing, the audit header, and the decode order of PS3.3 C.11 on synthetic
films (helpers.dicom_films): rescale before window, MONOCHROME1 inverted last, signed and 12-bit
stored values, multi-frame, a syntax with no decoder installed, bad bytes. pydicom's bundled files
are compared in tests/integration/test_dicom_reference.py."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from helpers.dicom_films import film, ramp
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLSLossless

from pipeline.core import dicom, images
from pipeline.core.dicom_pixels import to_pipeline
from pipeline.core.images import DecodeError


def test_is_dicom_part10_and_preambleless_but_not_png_or_text():
    assert dicom.is_dicom(film(ramp()))
    assert dicom.is_dicom(film(ramp(), preamble=False))
    assert not dicom.is_dicom(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    assert not dicom.is_dicom(b"just some notes\n" * 20)


def test_read_header_keeps_the_audit_fields_only():
    head = dicom.read_header(film(ramp(), bits_stored=12, patient="MRN-42"))
    assert head["patient_id"] == "MRN-42" and head["has_pixels"] is True
    assert (head["rows"], head["columns"], head["bits_stored"], head["frames"]) == (32, 40, 12, 1)
    assert head["photometric"] == "MONOCHROME2" and head["pixel_spacing"] == "0.1\\0.1"
    assert "Doe^Jane" not in repr(head) and "St Example" not in repr(head)
    assert dicom.read_header(film(ramp(), with_pixels=False))["has_pixels"] is False


def test_rescale_comes_before_the_window():
    stored = ramp(top=1000)
    data = film(stored, bits_stored=12, rescale=(2.0, -100.0), window=(900.0, 1001.0))
    y = stored.astype(np.float64) * 2 - 100  # modality output; window LINEAR c=900 w=1001 on it
    lo, hi = -100.0, 4095 * 2 - 100.0  # pydicom's output range: the rescaled stored range
    want = np.clip(((y - 899.5) / 1000 + 0.5) * (hi - lo) + lo, lo, hi)
    assert np.abs(dicom.decode_dicom(data) - want).max() < 1e-2
    wrong_order = np.clip(((stored - 899.5) / 1000 + 0.5) * (hi - lo) + lo, lo, hi) * 2 - 100
    assert np.abs(dicom.decode_dicom(data) - wrong_order).max() > 100


def test_monochrome1_is_inverted_last_within_the_voi_output_range():
    px = ramp()
    mono2 = to_pipeline(film(px, bits_stored=12, window=(2048, 4096))).image
    mono1 = to_pipeline(film(px, bits_stored=12, window=(2048, 4096), photometric="MONOCHROME1")).image
    assert mono1.dtype == np.uint8 and np.abs(mono1.astype(int) + mono2 - 255).max() <= 1
    raw1 = dicom.decode_dicom(film(px, bits_stored=12, photometric="MONOCHROME1"))
    assert np.array_equal(raw1, 4095 - px)  # no VOI: inverted over the 12-bit stored range


def test_signed_12_bit_with_rescale_gives_hounsfield_floats():
    stored = (ramp(top=2000).astype(np.int16) - 1000).astype(np.int16)
    data = film(stored, bits_stored=12, rescale=(1.0, -1024.0), modality="CT")
    assert np.array_equal(dicom.decode_dicom(data), stored.astype(np.int32) - 1024)
    frame = to_pipeline(data)
    assert frame.image.dtype == np.float32 and frame.image.min() < -1024  # dataset window maps it


def test_12_bit_in_16_stays_uint16_with_bitsstored_as_significant_bits():
    px = ramp(top=4095)
    frame = to_pipeline(film(px, bits_stored=12))
    assert frame.image.dtype == np.uint16 and frame.significant_bits == 12
    assert np.array_equal(frame.image, px)


def test_voi_lut_sequence_is_preferred_and_voi_false_skips_it():
    px = ramp(top=4095)
    lut = [min(4095, 2 * i) for i in range(4096)]
    data = film(px, bits_stored=12, voi_lut=(0, lut), window=(100, 10))
    assert np.array_equal(dicom.decode_dicom(data), np.minimum(4095, 2 * px.astype(int)))
    assert np.array_equal(dicom.decode_dicom(data, voi=False), px)


def test_multi_frame_each_frame_on_request_and_out_of_range_refused():
    frames = np.stack([ramp(seed=1), ramp(seed=2), ramp(seed=3)])
    data = film(frames, bits_stored=12)
    assert dicom.read_header(data)["frames"] == 3
    assert np.array_equal(dicom.decode_dicom(data, frame=2), frames[2])
    with pytest.raises(DecodeError, match="frame 3 requested of a 3-frame DICOM"):
        dicom.decode_dicom(data, frame=3)


@pytest.mark.parametrize("syntax", ["rle", "j2k"])
def test_compressed_syntaxes_decode_losslessly(syntax):
    px = ramp(top=4095)
    assert np.array_equal(dicom.decode_dicom(film(px, bits_stored=12, syntax=syntax)), px)


def test_a_syntax_with_no_decoder_installed_names_it_and_the_package():
    ds = pydicom.dcmread(io.BytesIO(film(ramp(h=8, w=8), bits_stored=12)))
    ds.PixelData = encapsulate([bytes(ds.PixelData)])
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(DecodeError, match=r"JPEG-LS Lossless .*pylibjpeg-libjpeg \(GPL\) or python-gdcm"):
        dicom.decode_dicom(buf.getvalue())


def test_bad_inputs_raise_decode_error_with_the_true_reason():
    with pytest.raises(DecodeError, match="not a DICOM file"):
        dicom.decode_dicom(b"\x00" * 128 + b"NOPE" + b"\x00" * 64)
    with pytest.raises(DecodeError, match="DICOM without pixel data"):
        dicom.decode_dicom(film(ramp(), with_pixels=False))
    whole = film(ramp(), bits_stored=12)
    with pytest.raises(DecodeError, match="undecodable"):
        dicom.decode_dicom(whole[:-500])


def test_decode_raw_dispatches_dicom_and_keeps_rgb_order():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = images.decode(film(rgb, photometric="RGB", syntax="rle"), channels=3)
    assert out.shape == (16, 16, 3) and out[0, 0].tolist() == [200, 0, 0]
    gray = images.decode(film(ramp(top=4095), bits_stored=12), channels=1, window=(0, 4095))
    assert gray.dtype == np.uint8 and gray.shape == (32, 40, 1) and gray.max() == 255
