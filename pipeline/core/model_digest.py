"""What a saved model is, as one sha256: architecture and weights of a model.keras, not its file bytes.

Keras writes the save date into metadata.json and per-process object ids into config.json, and HDF5
records object times, so two saves of the same weights differ as files. The register stage tags each
version with this digest (`model.sha256`) to recognise an identical retrain.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pipeline.core.provenance import file_sha256


def _canonical_config(raw: bytes) -> bytes:
    """config.json with Keras' `shared_object_id`s (Python object ids, new every process) renumbered
    in order of first appearance, so the same architecture gives the same bytes."""
    ids: dict[Any, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else walk(v)
                for k, v in sorted(node.items())
            }
        return [walk(v) for v in node] if isinstance(node, list) else node

    return json.dumps(walk(json.loads(raw)), sort_keys=True).encode()


def model_digest(path: Path) -> str:
    """sha256 of what a model.keras is: its config.json and every weight array (name, dtype, shape,
    bytes). Keras writes the save date into metadata.json and HDF5 writes object times, so two saves of
    the same weights differ as files; a file that is not a Keras archive is hashed as bytes."""
    if not zipfile.is_zipfile(path):
        return file_sha256(path)
    import h5py
    import numpy as np

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        digest.update(_canonical_config(archive.read("config.json")) if "config.json" in names else b"")
        if "model.weights.h5" not in names:
            return digest.hexdigest()
        arrays: list[tuple[str, np.ndarray]] = []
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            weights.visititems(
                lambda n, obj: arrays.append((n, obj[()])) if isinstance(obj, h5py.Dataset) else None
            )
    for name, value in sorted(arrays, key=lambda item: item[0]):
        value = np.ascontiguousarray(value)
        digest.update(f"{name}|{value.dtype.str}|{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
