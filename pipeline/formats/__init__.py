"""Dataset format adapters: `data.format` name -> adapter.

Every adapter has `name`, `example` (a path below data/raw that fits, for error messages) and
`regroup(files, data, extracted) -> Regrouped` (see pipeline/formats/base.py). Path formats read
labels from names and folders; medmnist unpacks an .npz into `extracted`; table reads a label
table beside the images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pipeline.config import FORMATS, DataConfig
from pipeline.core.errors import ConfigError
from pipeline.formats.base import RawFile, Regrouped
from pipeline.formats.breakhis import BreakhisAdapter
from pipeline.formats.chest_xray import ChestXrayAdapter
from pipeline.formats.dicom import DicomAdapter
from pipeline.formats.idc import IdcAdapter
from pipeline.formats.imagefolder import ImageFolderAdapter
from pipeline.formats.medmnist import MedmnistAdapter
from pipeline.formats.table import TableAdapter
from pipeline.formats.tb import TbAdapter


class Adapter(Protocol):
    name: str
    example: str

    def regroup(self, files: list[RawFile], data: DataConfig, extracted: Path) -> Regrouped: ...


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        IdcAdapter(),
        BreakhisAdapter(),
        ChestXrayAdapter(),
        TbAdapter(),
        ImageFolderAdapter(),
        MedmnistAdapter(),
        DicomAdapter(),
        TableAdapter(),
    )
}
assert set(ADAPTERS) == set(FORMATS), "pipeline.config.FORMATS and the adapter registry disagree"


def get(name: str) -> Adapter:
    """The adapter for `data.format`."""
    if name not in ADAPTERS:
        raise ConfigError(f"data.format {name!r} is unknown; expected one of {', '.join(ADAPTERS)}")
    return ADAPTERS[name]
