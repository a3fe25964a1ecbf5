"""The champion's manifests, read back from what its register run recorded.

The run stores the dvc.lock it was built with (`reproduce/dvc.lock`, pipeline.registry.run_content);
older runs hold lineage.json (every dvc.lock hash), and the version's git revision holds a dvc.lock
too. From it: the md5 of data/interim/validated.csv and the `.dir` md5 of data/splits, whose
objects are read from the LOCAL DVC cache (never pulled, never re-decoded). Anything missing raises
Unavailable with one line: the stage then writes status "unavailable" and the night goes on.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from pipeline.core import manifest
from pipeline.core.provenance import tag_key
from pipeline.registry import dvc_dirs

log = logging.getLogger(__name__)
VALIDATED = "data/interim/validated.csv"
SPLITS_DIR = "data/splits"
FRAME_COLUMNS = ["path", "sha256", "class_name", "patient_id", "split"]


class Unavailable(Exception):
    """The comparison cannot be made; str() is the one line the report shows."""


def hashes_from_lock(lock: dict) -> dict[str, str]:
    """{"validated": md5, "splits": md5.dir} from a parsed dvc.lock (outs of any stage)."""
    found: dict[str, str] = {}
    for body in (lock.get("stages") or {}).values():
        for entry in body.get("outs") or []:
            path, md5 = entry.get("path"), entry.get("md5")
            if md5 and path == VALIDATED:
                found["validated"] = str(md5)
            elif md5 and path == SPLITS_DIR:
                found["splits"] = str(md5)
    return found


def hashes_from_lineage(doc: dict) -> dict[str, str]:
    """The same two hashes from a run's lineage.json ({"dvc": {stage: {"out.<path>": md5}}})."""
    found: dict[str, str] = {}
    for entries in (doc.get("dvc") or {}).values():
        for key, md5 in entries.items():
            if key in ("out." + VALIDATED, tag_key("out." + VALIDATED)):
                found["validated"] = str(md5)
            elif key in ("out." + SPLITS_DIR, tag_key("out." + SPLITS_DIR)):
                found["splits"] = str(md5)
    return found


def lock_at_revision(root: Path, commit: str) -> dict:
    """dvc.lock as committed at a git revision ({} when git, the revision or the file is missing)."""
    if not commit or commit == "unknown":
        return {}
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "show", f"{commit}:dvc.lock"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return (yaml.safe_load(out.stdout) or {}) if out.returncode == 0 else {}


def cache_file(cache: Path, md5: str) -> Path | None:
    """The cache object of a file md5 (DVC 3 layout, else DVC 2's); None when absent."""
    for base in (Path(cache) / "files" / "md5", Path(cache)):
        path = base / md5[:2] / md5[2:]
        if len(md5) > 2 and path.is_file():
            return path
    return None


def _read_object(cache: Path, md5: str, what: str) -> pd.DataFrame:
    path = cache_file(cache, md5)
    if path is None:
        raise Unavailable(f"the champion's {what} (md5 {md5[:12]}) is not in the local DVC cache {cache}")
    try:
        return manifest.read(path)  # the object IS the CSV file, under its md5
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unavailable(f"the champion's {what} in the DVC cache is unreadable ({exc})") from exc


def read_then(root: Path, hashes: dict[str, str]) -> pd.DataFrame:
    """The champion's validated manifest with a `split` column from its split manifests."""
    if "validated" not in hashes:
        raise Unavailable(f"the champion's recorded dvc.lock names no {VALIDATED}")
    cache = dvc_dirs.cache_dir(root)
    validated = _read_object(cache, hashes["validated"], VALIDATED)
    splits: dict[str, str] = {}
    if "splits" in hashes:
        entries = dvc_dirs.dir_files(cache, hashes["splits"])
        if not entries:
            raise Unavailable(
                f"the champion's {SPLITS_DIR} (md5 {hashes['splits'][:12]}) is not in the DVC cache"
            )
        for md5, rel in entries:
            if rel in ("train.csv", "val.csv", "test.csv"):
                rows = _read_object(cache, md5, f"{SPLITS_DIR}/{rel}")
                splits |= dict.fromkeys(rows["path"].astype(str), rel.removesuffix(".csv"))
    return with_split(validated, splits)


def with_split(validated: pd.DataFrame, splits: dict[str, str]) -> pd.DataFrame:
    """validated rows with `split` (train|val|test, <NA> when in no split) and the frame columns."""
    missing = [c for c in ("path", "sha256", "class_name") if c not in validated.columns]
    if missing:
        raise Unavailable(f"the manifest lacks column(s) {', '.join(missing)}: another format version")
    out = validated.copy()
    out["split"] = pd.Series(out["path"].astype(str).map(splits), index=out.index, dtype="string")
    if "patient_id" not in out.columns:
        out["patient_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out.reset_index(drop=True)


def read_now(validated_csv: Path, splits_dir: Path) -> pd.DataFrame:
    """The current validated manifest with the current split of each row."""
    splits: dict[str, str] = {}
    for name in ("train", "val", "test"):
        path = Path(splits_dir) / f"{name}.csv"
        if path.is_file():
            splits |= dict.fromkeys(manifest.read(path, ["path"])["path"].astype(str), name)
    return with_split(manifest.read(validated_csv, ["path", "sha256", "class_name"]), splits)
