"""User-facing errors: one clear line naming what is wrong and how to fix it."""


class MedpipeError(Exception):
    """An error caused by input or configuration, reported as one line without a traceback."""


class ConfigError(MedpipeError):
    """params.yaml is missing a key, has an unknown key, or a value of the wrong type."""


class DataError(MedpipeError):
    """The source data is missing, empty, or in the wrong layout."""


class ValidationFailed(MedpipeError):
    """The data failed validation; the message names the bad rows."""


class ResourceError(MedpipeError):
    """The job does not fit the machine (accelerator or host memory); the message says what to lower."""


class DecodeError(ValueError):
    """The bytes are not a decodable image (the message says why). Re-exported by pipeline.core.images,
    where readers catch it; defined here so pipeline.core.dicom can raise it without an import cycle."""
