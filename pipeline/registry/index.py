"""lineage.db: a sqlite index from image (sha256 / path), DVC hash and file md5 to model versions.

MLflow holds the versions, their tags and the split manifests (as run artifacts); this index
answers "which model versions saw this image, and in which split" with two indexed lookups
instead of scanning every version's manifests. A split manifest is stored once per content
hash, so retraining on the same splits adds no rows. Layout:

    manifests(id PK, manifest_sha256 UNIQUE, n_rows)  manifest_rows(manifest_id, sha256, path)
    run_manifests(run_id, split, manifest_sha256)  run_hashes(run_id, key, md5)
    dirs(md5 PK, n_files)  dir_files(dir_md5, md5, relpath)
    versions(run_id PK, model_name, version)

dir_files holds the per-file md5s of each directory output (DVC's `.dir` objects,
pipeline.registry.dvc_dirs), once per `.dir` hash, so a file is found by its own DVC md5.

The file lives next to a sqlite tracking DB (sqlite:///dir/mlflow.db -> dir/lineage.db), else
in the working directory; MEDPIPE_LINEAGE_DB overrides.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from pipeline.registry import dvc_dirs

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (id INTEGER PRIMARY KEY, manifest_sha256 TEXT UNIQUE, n_rows INTEGER);
CREATE TABLE IF NOT EXISTS manifest_rows (manifest_id INTEGER, sha256 TEXT, path TEXT);
CREATE INDEX IF NOT EXISTS manifest_rows_sha ON manifest_rows(sha256);
CREATE INDEX IF NOT EXISTS manifest_rows_path ON manifest_rows(path);
CREATE TABLE IF NOT EXISTS run_manifests (run_id TEXT, split TEXT, manifest_sha256 TEXT,
    PRIMARY KEY (run_id, split));
CREATE TABLE IF NOT EXISTS run_hashes (run_id TEXT, key TEXT, md5 TEXT);
CREATE INDEX IF NOT EXISTS run_hashes_md5 ON run_hashes(md5);
CREATE TABLE IF NOT EXISTS dirs (md5 TEXT PRIMARY KEY, n_files INTEGER);
CREATE TABLE IF NOT EXISTS dir_files (dir_md5 TEXT, md5 TEXT, relpath TEXT);
CREATE INDEX IF NOT EXISTS dir_files_md5 ON dir_files(md5);
CREATE TABLE IF NOT EXISTS versions (run_id TEXT PRIMARY KEY, model_name TEXT, version TEXT);
"""


def index_path(tracking_uri: str) -> Path:
    if os.environ.get("MEDPIPE_LINEAGE_DB"):
        return Path(os.environ["MEDPIPE_LINEAGE_DB"])
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent / "lineage.db"
    return Path("lineage.db")


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One transaction: committed on success, rolled back on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.executescript(SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def record_run(
    path: Path,
    run_id: str,
    manifests: dict[str, tuple[str, pd.DataFrame]],
    dvc_hashes: dict[str, str],
    dvc_cache: Path | None = None,
) -> None:
    """Index a run's split manifests ({split: (manifest sha256, df with sha256, path)}), DVC hashes
    and the files of its directory outputs, read from dvc_cache (default: the DVC cache of the
    project in the working directory, where the register stage runs)."""
    cache = dvc_cache if dvc_cache is not None else dvc_dirs.cache_dir(Path.cwd())
    with connect(path) as conn:
        for split, (digest, df) in manifests.items():
            known = conn.execute("SELECT 1 FROM manifests WHERE manifest_sha256 = ?", (digest,)).fetchone()
            if not known:
                new_id = conn.execute(
                    "INSERT INTO manifests (manifest_sha256, n_rows) VALUES (?, ?)", (digest, len(df))
                ).lastrowid
                rows = zip([new_id] * len(df), df["sha256"].astype(str), df["path"].astype(str), strict=True)
                conn.executemany("INSERT INTO manifest_rows VALUES (?, ?, ?)", rows)
            conn.execute("INSERT OR REPLACE INTO run_manifests VALUES (?, ?, ?)", (run_id, split, digest))
        conn.executemany(
            "INSERT INTO run_hashes VALUES (?, ?, ?)", [(run_id, k, v) for k, v in dvc_hashes.items()]
        )
        for dir_md5 in sorted({v for k, v in dvc_hashes.items() if ".out." in k and v.endswith(".dir")}):
            _record_dir(conn, cache, dir_md5)


def _record_dir(conn: sqlite3.Connection, cache: Path, dir_md5: str) -> None:
    """The files of one directory output, once per `.dir` hash (none when its object is not in cache)."""
    if conn.execute("SELECT 1 FROM dirs WHERE md5 = ?", (dir_md5,)).fetchone():
        return
    files = dvc_dirs.dir_files(cache, dir_md5)
    if not files:
        return
    conn.execute("INSERT INTO dirs VALUES (?, ?)", (dir_md5, len(files)))
    conn.executemany("INSERT INTO dir_files VALUES (?, ?, ?)", [(dir_md5, m, r) for m, r in files])


def record_version(path: Path, run_id: str, model_name: str, version: str) -> None:
    with connect(path) as conn:
        conn.execute("INSERT OR REPLACE INTO versions VALUES (?, ?, ?)", (run_id, model_name, version))


_BY_IMAGE = """
SELECT DISTINCT v.model_name, v.version, rm.split, r.sha256, r.path
FROM manifest_rows r
JOIN manifests m ON m.id = r.manifest_id
JOIN run_manifests rm ON rm.manifest_sha256 = m.manifest_sha256
JOIN versions v ON v.run_id = rm.run_id
WHERE r.{column} = ?
ORDER BY v.model_name, CAST(v.version AS INTEGER), rm.split
"""

_BY_DVC_HASH = """
SELECT DISTINCT v.model_name, v.version, h.key, h.md5
FROM run_hashes h JOIN versions v ON v.run_id = h.run_id
WHERE h.md5 = ? OR h.md5 = ?
ORDER BY v.model_name, CAST(v.version AS INTEGER), h.key
"""

# A file inside a directory output, by its own md5: the stage that wrote the directory (`.out.`
# keys only; the same hash as a later stage's dep would repeat the row).
_BY_FILE_MD5 = """
SELECT DISTINCT v.model_name, v.version, h.key, f.md5, f.relpath
FROM dir_files f
JOIN run_hashes h ON h.md5 = f.dir_md5 AND h.key LIKE 'dvc.%.out.%'
JOIN versions v ON v.run_id = h.run_id
WHERE f.md5 = ?
ORDER BY v.model_name, CAST(v.version AS INTEGER), h.key, f.relpath
"""


def versions_with_image(path: Path, column: str, value: str) -> list[dict]:
    """Model versions whose split manifests contain an image (column: 'sha256' or 'path')."""
    if column not in ("sha256", "path") or not path.is_file():
        return []
    with connect(path) as conn:
        rows = conn.execute(_BY_IMAGE.format(column=column), (value,)).fetchall()
    keys = ("model_name", "version", "split", "sha256", "path")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def versions_with_dvc_hash(path: Path, md5: str) -> list[dict]:
    """Model versions whose dvc.lock recorded this md5 (a '.dir' suffix is optional), or whose
    directory outputs hold a file with this md5 (then with the file's project-relative path)."""
    if not path.is_file():
        return []
    bare = md5.removesuffix(".dir")
    with connect(path) as conn:
        rows = conn.execute(_BY_DVC_HASH, (bare, bare + ".dir")).fetchall()
        files = conn.execute(_BY_FILE_MD5, (bare,)).fetchall()
    keys = ("model_name", "version", "key", "md5")
    hits = [dict(zip(keys, row, strict=True)) for row in rows]
    for name, version, key, file_md5, relpath in files:
        out = key.partition(".out.")[2]
        hits.append(
            {"model_name": name, "version": version, "key": key, "md5": file_md5, "path": f"{out}/{relpath}"}
        )
    return hits
