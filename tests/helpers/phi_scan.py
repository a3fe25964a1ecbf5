"""Find planted PHI strings in what a run wrote: the project's files, captured logs, the MLflow store.

`scan_project(root, needles)` walks every file below a project directory, skipping the places
that hold INPUT, not output: data/raw (the mirror of the source, which carries the table with
the real identifiers by design), .dvc/cache (DVC's copies of data/raw), .venv and .git (the
committed history is scanned as text instead: see `git_history`). Symbolic links are not followed
(class_view/ links point into data/raw). Zip containers (.zip, .keras, MLflow model archives) and
.gz files are opened and their members scanned too. `scan_sqlite` reads an SQLite file both as bytes
and row by row (a value split across overflow pages shows up in the rows); `scan_texts` covers
captured logs and API answers (Prefect artifacts and logs). Needles match case-insensitively, and
as base64 text (as planted) at every alignment.
Every hit says where it is, so a failing test names the file, member, table or log.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = ("data/raw", ".dvc/cache", ".venv", ".git")
ZIP_SUFFIXES = (".zip", ".keras", ".whl")


@dataclass(frozen=True)
class Hit:
    where: str
    needle: str
    context: str

    def __str__(self) -> str:
        return f"{self.where}: {self.needle!r} in ...{self.context}..."


def base64_forms(needle: bytes) -> list[bytes]:
    """The base64 text `needle` becomes at each of the 3 byte alignments (only the characters made
    of its bits alone), so a value inside a base64 blob (an MLflow input example of image bytes, a
    JSON body) is found too. Base64 is case-sensitive: these match the needle as planted."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + needle)
        forms.append(encoded[-(-shift * 8 // 6) : (shift + len(needle)) * 8 // 6])
    return forms


def scan_bytes(data: bytes, needles: list[str], where: str) -> list[Hit]:
    """Every needle found in `data` (UTF-8 and UTF-16-LE, case-insensitive; base64 of the UTF-8 as
    planted), once per needle."""
    low = data.lower()
    hits = []
    for needle in needles:
        plain = [(low, needle.lower().encode("utf-8")), (low, needle.lower().encode("utf-16-le"))]
        for haystack, encoded in plain + [(data, form) for form in base64_forms(needle.encode())]:
            at = haystack.find(encoded)
            if at >= 0:
                context = data[max(0, at - 40) : at + len(encoded) + 40].decode("utf-8", "replace")
                hits.append(Hit(where, needle, context))
                break
    return hits


def scan_texts(texts: dict[str, str], needles: list[str]) -> list[Hit]:
    """Captured logs, API answers: {where: text}."""
    return [hit for where, text in texts.items() for hit in scan_bytes(text.encode(), needles, where)]


def scan_sqlite(path: Path, needles: list[str], where: str | None = None) -> list[Hit]:
    """An SQLite database as bytes (with its -wal/-journal) and as the text of every row."""
    where = where or str(path)
    hits = []
    for extra in ("", "-wal", "-journal"):
        part = Path(f"{path}{extra}")
        if part.is_file():
            hits += scan_bytes(part.read_bytes(), needles, f"{where}{extra}")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 (names from the db)
            text = "\n".join(repr(row) for row in rows)
            hits += scan_bytes(text.encode(), needles, f"{where} table {table}")
    return hits


def _scan_file(path: Path, data: bytes, needles: list[str], where: str) -> list[Hit]:
    hits = scan_bytes(data, needles, where)
    name = path.name.lower()
    if name.endswith(ZIP_SUFFIXES) or data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for member in zf.namelist():
                    inner = zf.read(member)
                    hits += _scan_file(Path(member), inner, needles, f"{where}!{member}")
        except zipfile.BadZipFile:
            pass
    elif name.endswith(".gz"):
        try:
            hits += scan_bytes(gzip.decompress(data), needles, f"{where}!gunzip")
        except OSError:
            pass
    return hits


def scan_project(root: Path, needles: list[str], skipped: tuple[str, ...] = SKIPPED_DIRS) -> list[Hit]:
    """Every hit in every regular file below `root`, except the input folders in `skipped`."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if (f"{rel_dir}/{d}" if rel_dir != "." else d) not in skipped]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            if name.endswith((".db", ".sqlite")):
                hits += scan_sqlite(path, needles, rel)
            else:
                hits += _scan_file(path, path.read_bytes(), needles, rel)
    return hits


def git_history(root: Path) -> str:
    """Every committed change of the repository at `root` as text (what .git holds, readable)."""
    proc = subprocess.run(
        ["git", "log", "--all", "-p", "--binary", "--format=commit %H%n%B"],
        cwd=root,
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    )
    return proc.stdout
