"""params.yaml, typed: the sections (schema), the one loader (loader), per-key types and ranges
(types), cross-key checks (checks) and the presets that rewrite params.yaml (presets).

`from pipeline.config import Config, load` is the way in; the submodules are details.
"""

from pipeline.config.changes_schema import ChangesConfig
from pipeline.config.loader import from_dict, load, to_dict
from pipeline.config.naming import registered_name
from pipeline.config.schema import (
    FORMATS,
    AugmentConfig,
    BalanceConfig,
    Config,
    DataConfig,
    DicomConfig,
    EvaluateConfig,
    GateConfig,
    PreprocessConfig,
    RegistryConfig,
    SampleConfig,
    SplitConfig,
    TableConfig,
    TrainAugmentConfig,
    TrainConfig,
    ValidateConfig,
)

__all__ = [
    "FORMATS",
    "AugmentConfig",
    "BalanceConfig",
    "ChangesConfig",
    "Config",
    "DataConfig",
    "DicomConfig",
    "EvaluateConfig",
    "GateConfig",
    "PreprocessConfig",
    "RegistryConfig",
    "SampleConfig",
    "SplitConfig",
    "TableConfig",
    "TrainAugmentConfig",
    "TrainConfig",
    "ValidateConfig",
    "from_dict",
    "load",
    "registered_name",
    "to_dict",
]
