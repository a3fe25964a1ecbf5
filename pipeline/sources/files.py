"""File-level helpers shared by the ingest sources: which files count as data, safe relative
paths and file names, impossible trees, directory walks and chunked hashing."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from pipeline.core.errors import DataError

log = logging.getLogger(__name__)

# Files ingest mirrors (and lists in the raw manifest). .npz carries MedMNIST arrays; .csv, .tsv and
# .parquet carry label tables (data.format table).
DATA_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jfif",
        ".tif",
        ".tiff",
        ".bmp",
        ".webp",
        ".gif",
        ".pgm",
        ".ppm",
        ".pnm",
        ".npz",
        ".dcm",
        ".dicom",
        ".csv",
        ".tsv",
        ".parquet",
    }
)
# OS clutter that is never data (compared lower-case); names starting with "." are skipped too.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
MAX_NAME_BYTES = 255  # one path component, as ext4/xfs/btrfs/APFS allow


def is_ignored(rel: str) -> bool:
    """True for hidden files/folders (.DS_Store, .git, ...) and OS clutter anywhere in the path."""
    return any(part.startswith(".") or part.lower() in IGNORED_NAMES for part in rel.split("/"))


def is_pacs_name(name: str) -> bool:
    """A DICOM file name as PACS exports write them, without .dcm: DICOMDIR, a UID
    (`1.2.840.113619.2.55.3`: digits and dots) or a suffix-less name with a digit (`IM0001`).
    Judged by name alone (S3 listings and archives have no bytes to sniff); the dicom adapter
    sniffs each one and skips those that are not DICOM, other formats skip them as suffix-less."""
    if name.upper() == "DICOMDIR":
        return True
    if name.replace(".", "").isdigit():
        return not name.startswith(".") and not name.endswith(".")
    return "." not in name and name.isalnum() and any(c.isdigit() for c in name)


def is_data_file(rel: str) -> bool:
    """True when `rel` (a POSIX relative path) is an image, array or DICOM file ingest should keep."""
    slash = rel.rfind("/")
    dot = rel.rfind(".")
    named = dot > slash + 1 and rel[dot:].lower() in DATA_SUFFIXES
    return (named or is_pacs_name(rel[slash + 1 :])) and not is_ignored(rel)


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


def utf8_name(name: str) -> str:
    """`name` with the bytes that were not valid UTF-8 (surrogate escapes, as os.walk and tarfile
    give them) read as Latin-1, so every stored name is valid UTF-8: b'caf\\xe9.png' -> 'café.png'."""
    if not any("\udc80" <= ch <= "\udcff" for ch in name):
        return name
    return "".join(chr(ord(ch) - 0xDC00) if "\udc80" <= ch <= "\udcff" else ch for ch in name)


def log_renamed(renamed: dict[str, str], what: str) -> None:
    """Warn once about names that were not UTF-8 (and how they are stored)."""
    if renamed:
        old, new = next(iter(renamed.items()))
        log.warning(
            "%d file name(s) in %s are not valid UTF-8; kept with those bytes read as Latin-1, e.g. %r -> %r",
            len(renamed),
            what,
            os.fsencode(old),
            new,
        )


def check_tree(rels: Iterable[str], what: str) -> None:
    """One-line DataError for a set of paths no folder can hold: a name over 255 bytes, or the
    same path both a file and a folder (`x.png` and `x.png/y.png`)."""
    files = set(rels)
    for rel in sorted(files):
        long = next(
            (p for p in rel.split("/") if len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES), None
        )
        if long is not None:
            raise DataError(
                f"{what} has a name longer than {MAX_NAME_BYTES} bytes ({long[:40]!r}..., "
                f"{len(long.encode('utf-8', 'surrogateescape'))} bytes) that no file system can store; shorten it"
            )
    for rel in sorted(files):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in files:
                raise DataError(
                    f"{what} has both a file {parent!r} and a folder of that name (holding {rel!r}); "
                    "rename one of them"
                )


def walk_files(root: Path) -> dict[str, os.stat_result]:
    """Every regular file under root (not following links) as {posix relpath: stat}."""
    found: dict[str, os.stat_result] = {}
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root_str)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in filenames:
            try:
                st = os.stat(os.path.join(dirpath, name), follow_symlinks=False)
            except FileNotFoundError:
                continue
            found[prefix + name] = st
    return found


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link src to dest (same file system: no bytes copied); copy when linking is refused."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)
