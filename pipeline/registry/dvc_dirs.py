"""The files inside DVC's directory outputs, each with its own md5, for the lineage index.

DVC stores a directory output (data/raw, data/splits, ...) as one `.dir` object in its cache: a
JSON list of {"md5": ..., "relpath": ...}, one entry per file, at
<cache>/files/md5/<first 2 hex>/<rest>.dir. dvc.lock records only the `.dir` hash, so without these
entries a single file could not be found by the md5 DVC computed for it (its plain md5sum).
"""

from __future__ import annotations

import configparser
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir(root: Path) -> Path:
    """The local DVC cache of the project at root: `[cache] dir` of .dvc/config.local, else of
    .dvc/config (a relative dir is relative to .dvc/, as DVC reads it), else .dvc/cache."""
    dvc_dir = Path(root) / ".dvc"
    for name in ("config.local", "config"):
        parser = configparser.ConfigParser()
        try:
            parser.read(dvc_dir / name)
        except configparser.Error as exc:
            log.debug("%s unreadable (%s): default cache dir", dvc_dir / name, exc)
            continue
        if parser.has_option("cache", "dir"):
            return (dvc_dir / parser.get("cache", "dir")).resolve()
    return dvc_dir / "cache"


def dir_object(cache: Path, md5: str) -> Path | None:
    """The cache file of a `.dir` hash (DVC 3 layout, else DVC 2's), None when it is not there."""
    if not md5.endswith(".dir") or len(md5) < 3:
        return None
    for base in (Path(cache) / "files" / "md5", Path(cache)):
        path = base / md5[:2] / md5[2:]
        if path.is_file():
            return path
    return None


def dir_files(cache: Path, md5: str) -> list[tuple[str, str]]:
    """(md5, relpath) of every file of the directory output with hash md5; [] when it is no `.dir`
    hash or its object is not in the cache (e.g. pulled elsewhere)."""
    path = dir_object(cache, md5)
    if path is None:
        return []
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("DVC directory object %s unreadable (%s): its files are not indexed", path, exc)
        return []
    return [(str(e["md5"]), str(e["relpath"])) for e in entries if e.get("md5") and e.get("relpath")]
