"""The files of DVC directory outputs read from the cache (the lineage index of file md5s)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.registry import dvc_dirs

ENTRIES = [{"md5": "1" * 32, "relpath": "a.png"}, {"md5": "2" * 32, "relpath": "sub/b.png"}]


def test_dir_files_from_the_dvc3_and_dvc2_cache_layouts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    v3 = cache / "files/md5/ab" / ("c" * 30 + ".dir")
    v3.parent.mkdir(parents=True)
    v3.write_text(json.dumps(ENTRIES))
    assert dvc_dirs.dir_files(cache, "ab" + "c" * 30 + ".dir") == [
        ("1" * 32, "a.png"),
        ("2" * 32, "sub/b.png"),
    ]
    v2 = cache / "ef" / ("0" * 30 + ".dir")
    v2.parent.mkdir(parents=True)
    v2.write_text(json.dumps(ENTRIES[:1]))
    assert dvc_dirs.dir_files(cache, "ef" + "0" * 30 + ".dir") == [("1" * 32, "a.png")]
    assert dvc_dirs.dir_files(cache, "ab" + "c" * 30) == []  # a file hash, not a directory
    assert dvc_dirs.dir_files(cache, "99" + "9" * 30 + ".dir") == []  # not in this cache
    v3.write_text("{not json")
    assert dvc_dirs.dir_files(cache, "ab" + "c" * 30 + ".dir") == []


def test_cache_dir_follows_the_dvc_config(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    assert dvc_dirs.cache_dir(tmp_path) == tmp_path / ".dvc/cache"
    (tmp_path / ".dvc/config").write_text(
        "[core]\n    autostage = true\n[cache]\n    dir = ../shared-cache\n"
    )
    assert dvc_dirs.cache_dir(tmp_path) == (tmp_path / "shared-cache").resolve()
    (tmp_path / ".dvc/config.local").write_text("[cache]\n    dir = /srv/dvc-cache\n")
    assert dvc_dirs.cache_dir(tmp_path) == Path("/srv/dvc-cache")
