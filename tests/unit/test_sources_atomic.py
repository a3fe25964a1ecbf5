"""Atomic ingest, one link rule and the archive guard, in process.

The end-to-end versions through `dvc repro ingest` are in test_bad_input_sources_e2e.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.core.errors import DataError
from pipeline.sources import STATE_NAME, mirror
from pipeline.sources.archive import ArchiveLimits, sync_archive
from pipeline.sources.local import sync_dir

LIMITS = ArchiveLimits(None, 1000, 10**12)


def tree(root: Path) -> dict[str, str]:
    """{relpath: sha256} of every file (state file included) under root."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_tar(path: Path, members: list[tuple]) -> Path:
    """members: (name, bytes) files or (name, 'sym'|'hard', target) links; names may repeat."""
    with tarfile.open(path, "w", encoding="utf-8", errors="surrogateescape") as tf:
        for name, data, *target in members:
            info = tarfile.TarInfo(name)
            if target:
                info.type = tarfile.SYMTYPE if data == "sym" else tarfile.LNKTYPE
                info.linkname = target[0]
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def test_duplicate_names_last_wins_and_links_inside_are_followed(tmp_path, caplog):
    path = make_tar(
        tmp_path / "a.tar",
        [
            ("c/0/a.png", b"old"),
            ("c/0/a.png", b"new"),
            ("c/0/sym.png", "sym", "a.png"),
            ("c/0/hard.png", "hard", "c/0/a.png"),
            ("c/pos/b.png", b"bbb"),
            ("c/1", "sym", "pos"),
            ("c/dangling.png", "sym", "nothing.png"),
            ("caf\udce9.png", b"latin-1 name"),
        ],
    )
    summary = sync_archive(path, tmp_path / "raw", "a.tar", LIMITS)
    got = {rel: (tmp_path / "raw" / rel).read_bytes() for rel in summary.files}
    assert got == {
        "c/0/a.png": b"new",
        "c/0/sym.png": b"new",
        "c/0/hard.png": b"new",
        "c/pos/b.png": b"bbb",
        "c/1/b.png": b"bbb",
        "café.png": b"latin-1 name",
    }
    assert summary.skipped == {"dangling-link": 1, "duplicate-name": 1}
    assert "the last member of each wins" in caplog.text and "'café.png'" in caplog.text


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("x.png", b"1"), ("x.png/y.png", b"2")], "has both a file 'x.png' and a folder of that name"),
        ([("d/" + "n" * 252 + ".png", b"1")], "has a name longer than 255 bytes"),
        ([("a.png", "sym", "b.png"), ("b.png", "sym", "a.png")], "has a symlink loop at 'a.png'"),
        ([("d/x.png", b"1"), ("d/self", "sym", ".")], "has a symlink loop at 'd/self'"),
        ([("ok.png", b"1"), ("l.png", "sym", "../../etc/passwd")], "link to '../../etc/passwd' outside"),
    ],
)
def test_impossible_archives_are_one_line_and_leave_raw_byte_identical(tmp_path, members, message):
    raw = tmp_path / "raw"
    sync_archive(make_tar(tmp_path / "good.tar", [("k/a.png", b"a"), ("k/b.png", b"b")]), raw, "g", LIMITS)
    before = tree(raw)
    with pytest.raises(DataError, match=message) as err:
        sync_archive(make_tar(tmp_path / "bad.tar", members), raw, "bad.tar", LIMITS)
    assert "\n" not in str(err.value)
    assert tree(raw) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar", "good.tar", "raw"]


def test_failure_after_staging_leaves_raw_and_state_byte_identical(tmp_path):
    raw = tmp_path / "raw"
    sync_archive(make_tar(tmp_path / "v1.tar", [("a.png", b"1"), ("b.png", b"2")]), raw, "v", LIMITS)
    before = tree(raw)

    def fail(summary):
        assert summary.copied == 3 and summary.deleted == 1
        raise OSError("disk full")

    v2 = make_tar(tmp_path / "v2.tar", [("a.png", b"changed"), ("c.png", b"3"), ("x/y.png", b"4")])
    with pytest.raises(OSError, match="disk full"):
        sync_archive(v2, raw, "v", LIMITS, prepare=fail)
    assert tree(raw) == before and STATE_NAME in before
    summary = sync_archive(v2, raw, "v", LIMITS)
    assert (summary.copied, summary.deleted) == (3, 1)
    assert {k for k in tree(raw) if k != STATE_NAME} == {"a.png", "c.png", "x/y.png"}


def test_file_replaced_by_folder_of_the_same_name_between_runs(tmp_path):
    raw = tmp_path / "raw"
    sync_archive(make_tar(tmp_path / "v1.tar", [("x.png", b"1"), ("k.png", b"k")]), raw, "v", LIMITS)
    ino = (raw / "k.png").stat().st_ino
    sync_archive(make_tar(tmp_path / "v2.tar", [("x.png/y.png", b"2"), ("k.png", b"k")]), raw, "v", LIMITS)
    assert (raw / "x.png" / "y.png").read_bytes() == b"2"
    assert (raw / "k.png").stat().st_ino == ino  # unchanged files are hard links, not copies


def test_interrupted_two_rename_swap_is_put_back(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    sync_archive(make_tar(tmp_path / "v1.tar", [("a.png", b"1")]), raw, "v", LIMITS)
    before = tree(raw)
    os.rename(raw, tmp_path / ".raw.previous")  # killed between the two renames of the fallback
    monkeypatch.setattr(mirror, "_exchange", lambda a, b: False)
    summary = sync_archive(make_tar(tmp_path / "v1.tar", [("a.png", b"1")]), raw, "v", LIMITS)
    assert summary.copied == 0 and tree(raw) == before
    sync_archive(make_tar(tmp_path / "v2.tar", [("b.png", b"2")]), raw, "v", LIMITS)  # fallback swap
    assert set(tree(raw)) == {"b.png", STATE_NAME} and not (tmp_path / ".raw.previous").exists()


def _encrypted_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.png", b"secret pixels")
    data = bytearray(path.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose bit 0: encrypted
        at = data.find(sig)
        data[at + flag_at] |= 0x01
    path.write_bytes(bytes(data))
    return path


def test_encrypted_zip_free_space_and_cap_are_one_line(tmp_path):
    with pytest.raises(DataError, match=r"1 encrypted member\(s\) \(e.g. 'a.png'\); medpipe cannot decrypt"):
        sync_archive(_encrypted_zip(tmp_path / "e.zip"), tmp_path / "raw", "e.zip", LIMITS)
    path = make_tar(tmp_path / "big.tar", [("a.png", bytes(3000)), ("b.png", bytes(3000))])
    with pytest.raises(DataError, match=r"needs 0.0 MiB .* but only 0.0 MiB is free; free disk space first"):
        sync_archive(path, tmp_path / "raw", "big.tar", ArchiveLimits(None, 100, 5000))
    with pytest.raises(DataError, match=r"more than data.max_archive_bytes \(5000 bytes\)"):
        sync_archive(path, tmp_path / "raw", "big.tar", ArchiveLimits(5000, 100, 10**12))
    summary = sync_archive(path, tmp_path / "raw", "big.tar", ArchiveLimits(None, 100, 12000))
    assert summary.copied == 2  # 6000 unpacked + 6000 for DVC's cache copy fit in 12000
    assert not (tmp_path / "raw2").exists()


def test_local_links_inside_followed_outside_refused_loops_one_line(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not yours")
    src = tmp_path / "src"
    (src / "p1" / "pos").mkdir(parents=True)
    (src / "p1" / "pos" / "x.png").write_bytes(b"x")
    (src / "p1" / "1").symlink_to("pos")  # class folder link inside: followed
    (src / "p1" / "copy.png").symlink_to(src / "p1" / "pos" / "x.png")  # absolute, but inside
    (src / "p1" / "dangling.png").symlink_to("gone.png")
    (src / os.fsdecode(b"caf\xe9.png")).write_bytes(b"c")
    raw = tmp_path / "raw"
    summary = sync_dir(src, raw, "src")
    assert sorted(summary.files) == ["café.png", "p1/1/x.png", "p1/copy.png", "p1/pos/x.png"]
    assert summary.skipped == {"broken-link": 1}
    before = tree(raw)
    for name, target, message in [
        ("out.png", outside, r"links leaving it: p1/out.png -> .*secret.png; medpipe reads nothing outside"),
        ("outdir", tmp_path, r"links leaving it: p1/outdir -> "),
        ("loop", Path(".."), r"has a symlink loop: p1/(1|pos)/loop -> \.\.; remove that link"),
        ("self.png", Path("self.png"), r"has a symlink loop: p1/self.png -> self.png"),
    ]:
        link = src / "p1" / ("pos" if name == "loop" else "") / name
        link.symlink_to(target)
        with pytest.raises(DataError, match=message) as err:
            sync_dir(src, raw, "src")
        assert "\n" not in str(err.value) and tree(raw) == before
        assert b"not yours" not in b"".join((raw / rel).read_bytes() for rel in before)
        link.unlink()
