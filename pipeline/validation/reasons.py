"""Quarantine reasons: the exact strings written to quarantine.csv's `reason` column.

Each row of the manifest gets at most one reason (the first that applies, in the order of
REASONS below: manifest problems first, then file problems, then decode problems, then duplicates).
"""

from __future__ import annotations

BAD_NAME = "bad-name"
LABEL_NOT_IN_SET = "label-not-in-set"
MISSING_PATIENT = "missing-patient"
UNREADABLE = "unreadable"
ZERO_BYTE = "zero-byte"
SHA256_MISMATCH = "sha256-mismatch"
NOT_AN_IMAGE = "not-an-image"
TRUNCATED = "truncated"
TOO_LARGE = "too-large"
UNDECODABLE = "undecodable"
TOO_SMALL = "too-small"
UNEXPECTED_CHANNELS = "unexpected-channels"
UNSUPPORTED_DTYPE = "unsupported-dtype"
DUPLICATE = "duplicate"

#: reason -> what it means (also the precedence order when several apply).
REASONS: dict[str, str] = {
    BAD_NAME: (
        "the file breaks the dataset's convention: its name, folder, (DICOM) a header it needs, or its "
        "label-table row is contradictory or malformed (regroup's format_error, quoted in the detail)"
    ),
    LABEL_NOT_IN_SET: "label index or class_name is not one of labels.json's classes",
    MISSING_PATIENT: "patient_id is empty: the image cannot be assigned to a patient-level split",
    UNREADABLE: "the file is missing, vanished, is not a regular file or cannot be read (permissions)",
    ZERO_BYTE: "the file is empty",
    SHA256_MISMATCH: "the file bytes differ from the manifest's sha256: raw data changed after ingest",
    NOT_AN_IMAGE: "no known image signature and OpenCV cannot decode it (text, random bytes, ...)",
    TRUNCATED: "a PNG without its IEND chunk or a JPEG without its FFD9 end marker",
    TOO_LARGE: "header dimensions exceed max_pixels or max_side (decompression-bomb guard)",
    UNDECODABLE: "an image signature is present but OpenCV (or, for DICOM, pydicom: detail names why) fails to decode it",
    TOO_SMALL: "height or width is below min_side",
    UNEXPECTED_CHANNELS: "decoded channel count is not 1 (gray), 3 (colour) or 4 (colour + alpha)",
    UNSUPPORTED_DTYPE: "decoded sample type is not uint8 or uint16 (DICOM: also float32, values after a rescale)",
    DUPLICATE: "byte-identical to an earlier row (detail names it): a leak risk across splits",
}

VALID_CHANNELS = (1, 3, 4)
VALID_DTYPES = ("uint8", "uint16", "float32")  # what a validated row may hold (expectations)
IMAGE_DTYPES = ("uint8", "uint16")  # float32 only from DICOM (values after a rescale), never a float TIFF
