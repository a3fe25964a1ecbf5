"""File-level helpers shared by the ingest sources: which files count as data, safe relative
paths, directory walks and chunked hashing."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# Files ingest mirrors (and lists in the raw manifest). .npz carries MedMNIST arrays.
DATA_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npz"})
# OS clutter that is never data (compared lower-case); names starting with "." are skipped too.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})


def is_ignored(rel: str) -> bool:
    """True for hidden files/folders (.DS_Store, .git, ...) and OS clutter anywhere in the path."""
    return any(part.startswith(".") or part.lower() in IGNORED_NAMES for part in rel.split("/"))


def is_data_file(rel: str) -> bool:
    """True when `rel` (a POSIX relative path) is an image or array file ingest should keep."""
    dot = rel.rfind(".")
    return dot > rel.rfind("/") + 1 and rel[dot:].lower() in DATA_SUFFIXES and not is_ignored(rel)


def safe_relpath(name: str) -> str:
    """Normalise an archive member / object key to a POSIX relative path.

    Raises ValueError for absolute paths, drive letters and any `..` component.
    """
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise ValueError(f"absolute path {name!r}")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path traversal in {name!r}")
    if not parts:
        raise ValueError(f"empty path {name!r}")
    return "/".join(parts)


def walk_files(root: Path) -> dict[str, os.stat_result]:
    """Every regular file under root (following file symlinks) as {posix relpath: stat}."""
    found: dict[str, os.stat_result] = {}
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root_str)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in filenames:
            try:
                st = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:
                log.warning("skipping broken link %s", os.path.join(dirpath, name))
                continue
            found[prefix + name] = st
    return found


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
