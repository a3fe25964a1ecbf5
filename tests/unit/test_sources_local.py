"""Local-folder source: rsync-like incremental mirror into data/raw, clear errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME
from pipeline.sources.local import sync_dir


def png(seed: int, size: int = 8) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def make_source(root: Path, n: int = 4) -> Path:
    for i in range(n):
        path = root / f"1000{i}" / str(i % 2) / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(i))
    return root


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_first_sync_copies_everything_and_ignores_clutter(tmp_path):
    src = make_source(tmp_path / "src")
    (src / ".DS_Store").write_bytes(b"x")
    (src / "10000" / "Thumbs.db").write_bytes(b"x")
    (src / ".hidden").mkdir()
    (src / ".hidden" / "a.png").write_bytes(png(9))
    (src / "notes.txt").write_text("not an image")
    raw = tmp_path / "data" / "raw"
    summary = sync_dir(src, raw, str(src))
    assert summary.copied == 4 and summary.deleted == 0
    assert raw.stat().st_mode & 0o755 == 0o755  # readable like any folder, not mkdtemp's 0700
    assert files(raw) == {f"1000{i}/{i % 2}/img{i}.png" for i in range(4)} | {STATE_NAME}
    for rel, rec in summary.files.items():
        data = (raw / rel).read_bytes()
        assert data == (src / rel).read_bytes()
        assert rec.bytes == len(data) and rec.sha256 == hashlib.sha256(data).hexdigest()
    assert not list(raw.parent.glob(".raw.staging-*"))


def test_resync_copies_only_changes_and_deletes_stale(tmp_path):
    src = make_source(tmp_path / "src")
    raw = tmp_path / "raw"
    sync_dir(src, raw, "src")
    before = {rel: os.stat(raw / rel) for rel in files(raw) - {STATE_NAME}}
    state = (raw / STATE_NAME).read_bytes()

    again = sync_dir(src, raw, "src")
    assert (again.copied, again.unchanged, again.deleted) == (0, 4, 0)
    assert (raw / STATE_NAME).read_bytes() == state  # deterministic: same data/raw hash

    changed = src / "10001/1/img1.png"
    changed.write_bytes(png(42, size=9))
    (src / "10002/0/img2.png").unlink()
    new = src / "10009/1/new.png"
    new.parent.mkdir(parents=True)
    new.write_bytes(png(7))
    third = sync_dir(src, raw, "src")
    assert (third.copied, third.deleted, third.unchanged) == (2, 1, 2)
    assert (raw / "10001/1/img1.png").read_bytes() == changed.read_bytes()
    assert not (raw / "10002").exists()  # emptied folders are pruned
    untouched = raw / "10000/0/img0.png"
    assert os.stat(untouched).st_ino == before["10000/0/img0.png"].st_ino
    assert os.stat(untouched).st_mtime_ns == before["10000/0/img0.png"].st_mtime_ns


def test_stray_file_in_raw_is_removed(tmp_path):
    src = make_source(tmp_path / "src")
    raw = tmp_path / "raw"
    sync_dir(src, raw, "src")
    (raw / "stray.png").write_bytes(png(3))
    summary = sync_dir(src, raw, "src")
    assert summary.deleted == 1 and not (raw / "stray.png").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is empty"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), "no image files"),
        (lambda p: p.write_text("x"), "not a .zip"),
    ],
)
def test_bad_source_is_one_line_error_and_keeps_previous_raw(tmp_path, setup, message):
    good = make_source(tmp_path / "good")
    raw = tmp_path / "raw"
    sync_dir(good, raw, "good")
    before = files(raw)
    bad = tmp_path / "bad"
    setup(bad)
    with pytest.raises(DataError, match=message) as err:
        sync_dir(bad, raw, str(bad))
    assert "\n" not in str(err.value)
    assert files(raw) == before
    assert not list(tmp_path.glob(".raw.staging-*"))


def test_an_empty_class_folder_is_counted_not_dropped_silently(tmp_path, caplog):
    from pipeline.sources.local import scan

    src = make_source(tmp_path / "src")
    (src / "10000" / "2").mkdir()  # a class folder with no images yet
    (src / "empty_patient").mkdir()
    with caplog.at_level("INFO", logger="pipeline.sources.local"):
        listing = scan(src, "source")
    assert listing.skipped == {"empty-folder": 2}
    assert "10000/2 (empty-folder)" in caplog.text
    assert len(listing.files) == 4
