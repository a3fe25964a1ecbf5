"""End-to-end bad-input suite, the source side: real archives and folders
built here, run through the real stages with `dvc repro` in a temporary git + DVC project.

Every case asserts its exact outcome (kept with these bytes / skipped and counted / one-line
error) and that valid data is never lost; every failing case also asserts that data/raw, its
state file, the raw manifest and dvc.lock are byte-identical to before and that nothing outside
the source reached data/raw or the DVC cache. Kept cases are batched: one archive or folder
holds many of them and one `dvc repro validate` covers them all. CASES (below) lists them all
with their outcome; `test_case_count` keeps the list and the tests in step.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project

SECRET = "wJalrXUtn/FEMI+K7MDENG/bPxRf+iCYzEXAMPLE"  # '/' and '+' as in real AWS secret keys
OUTSIDE_MARK = b"OUTSIDE-THE-SOURCE-4f1c"  # bytes of a file outside every source


# -- project and runs --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def proj(tmp_path_factory) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GIT_ENV)
    root = tmp_path_factory.mktemp("srcbad")
    work = make_git_dvc_project(root / "proj", "srcbad", env)
    base = yaml.safe_load((work / "params.yaml").read_text())
    base["data"].update(format="imagefolder")
    base["validate"]["max_quarantine_fraction"] = 0.5
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png(999) + OUTSIDE_MARK)
    return {"work": work, "env": env, "base": base, "root": root, "outside": outside, "n": 0}


def png(seed: int, side: int = 16) -> bytes:
    """A small valid PNG, distinct per seed."""
    img = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def repro(p: dict, stage: str = "ingest", **data: object) -> subprocess.CompletedProcess:
    """`dvc repro -s -f <stage>` (validate: the stages up to it) with data.* overrides."""
    params = json.loads(json.dumps(p["base"]))
    params["data"].update(data)
    (p["work"] / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    args = ["repro", "-f", stage] if stage != "ingest" else ["repro", "-s", "-f", "ingest"]
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=p["work"],
        env=p["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def snapshot(work: Path) -> dict[str, str]:
    """sha256 of every file of data/raw (state file included), the raw manifest and dvc.lock."""
    paths = sorted((work / "data" / "raw").rglob("*")) + [work / "data/manifests/raw.csv", work / "dvc.lock"]
    return {
        p.relative_to(work).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in paths
        if p.is_file()
    }


def raw_files(work: Path) -> dict[str, bytes]:
    return {
        p.relative_to(work / "data/raw").as_posix(): p.read_bytes()
        for p in (work / "data/raw").rglob("*")
        if p.is_file() and p.name != ".ingest-state.json"
    }


def state(work: Path) -> dict:
    return json.loads((work / "data/raw/.ingest-state.json").read_text())


def assert_nothing_from_outside(p: dict) -> None:
    for top in ("data", ".dvc/cache", "reports"):
        for path in (p["work"] / top).rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert OUTSIDE_MARK not in path.read_bytes(), f"outside bytes reached {path}"


def good_baseline(p: dict) -> dict[str, str]:
    """A committed good data/raw from a plain folder (ingested once; a refused case keeps it)."""
    src = p["root"] / "good"
    if not src.exists():
        for i, cls in enumerate(["neg", "pos", "neg", "pos"]):
            (src / cls).mkdir(parents=True, exist_ok=True)
            (src / cls / f"g{i}.png").write_bytes(png(500 + i))
    lock = p["work"] / "dvc.lock"
    committed = lock.is_file() and yaml.safe_load(lock.read_text())["stages"].get("ingest")
    if not (committed and committed["params"]["params.yaml"]["data.source"] == str(src)):
        ok(repro(p, source=str(src)))
    return snapshot(p["work"])


def refuse(p: dict, source: str | Path, message: str, **data: object) -> str:
    """Run a failing ingest: exactly one `medpipe: error:` line matching message, no traceback,
    everything byte-identical to the good baseline, no staging left, nothing from outside."""
    before = good_baseline(p)
    proc = repro(p, source=str(source), **data)
    out = proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("medpipe: error:")]
    assert proc.returncode != 0 and len(errors) == 1, out[-3000:]
    assert re.fullmatch(f"medpipe: error: {message}", errors[0]), errors[0]
    assert "Traceback" not in out and SECRET not in out
    assert snapshot(p["work"]) == before
    leftovers = [n for n in os.listdir(p["work"] / "data") if n.startswith(".raw")]
    assert leftovers == [], leftovers
    assert_nothing_from_outside(p)
    return errors[0]


def fresh(p: dict, name: str) -> Path:
    p["n"] += 1
    path = p["root"] / f"c{p['n']:03d}-{name}"
    return path


# -- archive builders ---------------------------------------------------------------------------
def tar_of(path: Path, members: list[tuple], fmt: int = tarfile.GNU_FORMAT) -> Path:
    """members: (name, bytes) | (name, 'sym'|'hard', target) | (name, 'dev') | (name, 'dir')."""
    mode = "w:gz" if path.name.endswith(("gz", "tgz")) else "w"
    with tarfile.open(path, mode, format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        for name, data, *target in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if data in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if data == "sym" else tarfile.LNKTYPE
                info.linkname = target[0]
                tf.addfile(info)
            elif data == "dev":
                info.type = tarfile.CHRTYPE
                tf.addfile(info)
            elif data == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def zip_of(path: Path, members: list[tuple], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """members: (name, bytes) | (name, 'sym', target); names may repeat (last wins)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(path, "w", compression=method) as zf:
            for name, data, *target in members:
                info = zipfile.ZipInfo(name, (2020, 1, 2, 3, 4, 6))
                info.compress_type = method
                if data == "sym":
                    info.external_attr = (0o120777) << 16
                    zf.writestr(info, target[0])
                else:
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data)
    return path


def patch_zip(
    path: Path, old: bytes, new: bytes | None = None, flag: int = 0, method: int | None = None
) -> Path:
    """Edit the name bytes / flag bits / method of the entry named `old`, in both of its headers."""
    data = bytearray(path.read_bytes())
    for sig, flag_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30), (b"PK\x01\x02", 8, 10, 46)):
        at = data.find(sig)
        while at >= 0:
            if data[at + name_at : at + name_at + len(old)] == old:
                data[at + flag_at] |= flag & 0xFF
                data[at + flag_at + 1] |= flag >> 8
                if method is not None:
                    data[at + method_at] = method
                if new is not None:
                    data[at + name_at : at + name_at + len(old)] = new
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    return path


def huge_tar_header(path: Path, size: int) -> Path:
    """A tar whose only member declares `size` bytes (a bomb by its header; no data follows)."""
    info = tarfile.TarInfo("neg/huge.png")
    info.size = size
    path.write_bytes(info.tobuf(tarfile.GNU_FORMAT) + bytes(1024))
    return path


# -- the kept batch: one tar, many cases, through regroup + validate ------------------------------
A, B, C, D, E, F, G, H, L, J, K = (png(i) for i in range(1, 12))
TAR_BATCH = [  # (case, members, expected {raw rel: bytes} for this case)
    ("plain-file", [("neg/plain.png", A)], {"neg/plain.png": A}),
    ("duplicate-name-last-wins", [("neg/dup.png", B), ("neg/dup.png", C)], {"neg/dup.png": C}),
    (
        "three-copies-last-wins",
        [("pos/dup3.png", D), ("pos/dup3.png", E), ("pos/dup3.png", F)],
        {"pos/dup3.png": F},
    ),
    ("symlink-to-file-inside", [("neg/link.png", "sym", "plain.png")], {"neg/link.png": A}),
    ("hardlink-to-file-inside", [("pos/hard.png", "hard", "neg/plain.png")], {"pos/hard.png": A}),
    (
        "symlink-chain-inside",
        [("neg/chain1.png", "sym", "chain2.png"), ("neg/chain2.png", "sym", "plain.png")],
        {"neg/chain1.png": A, "neg/chain2.png": A},
    ),
    (
        "class-folder-symlink",
        [(".store/sub/g.png", G), ("pos/linked", "sym", "../.store/sub")],
        {"pos/linked/g.png": G},
    ),
    ("dangling-symlink", [("neg/dangling.png", "sym", "nowhere.png")], {}),
    ("non-utf8-name", [("neg/caf\udce9.png", H)], {"neg/café.png": H}),
    ("odd-but-legal-name", [("neg/a b,c'd #1 (2).png", L)], {"neg/a b,c'd #1 (2).png": L}),
    ("unicode-name", [("pos/Ärztin-画像.png", J)], {"pos/Ärztin-画像.png": J}),
    ("dot-slash-and-dir-members", [("./pos/", "dir"), ("./pos//dot.png", K)], {"pos/dot.png": K}),
    ("hidden-file", [("neg/.hidden.png", png(20))], {}),
    ("macosx-clutter", [("__MACOSX/neg/._plain.png", b"\x00\x05\x16\x07")], {}),
    ("not-an-image-name", [("neg/readme.txt", b"notes")], {}),
    ("upper-case-suffix", [("pos/UPPER.PNG", png(21))], {"pos/UPPER.PNG": png(21)}),
    ("zero-byte-image", [("neg/empty.png", b"")], {"neg/empty.png": b""}),
]
TAR_SKIPPED = {"dangling-link": 1, "duplicate-name": 3, "hidden": 3, "not-an-image-name": 1}
# validate: a copy made by a link is the same image twice -> one of each pair is quarantined
# `duplicate`; the zero-byte file is quarantined `zero-byte`; every distinct image survives.


@pytest.mark.parametrize("stage", ["ingest", "validate"])
def test_tar_batch(proj, stage):
    p = proj
    members = [m for _, ms, _ in TAR_BATCH for m in ms]
    path = tar_of(fresh(p, "batch").with_suffix(".tar"), members)
    ok(repro(p, stage, source=str(path)))
    expected = {rel: data for _, _, exp in TAR_BATCH for rel, data in exp.items()}
    assert raw_files(p["work"]) == expected
    assert state(p["work"])["skipped"] == TAR_SKIPPED
    raw_csv = pd.read_csv(p["work"] / "data/manifests/raw.csv", keep_default_na=False)
    assert sorted(raw_csv["path"]) == sorted(f"data/raw/{rel}" for rel in expected)
    if stage == "ingest":
        return
    validated = pd.read_csv(p["work"] / "data/interim/validated.csv", keep_default_na=False)
    quarantine = pd.read_csv(p["work"] / "reports/validation/quarantine.csv", keep_default_na=False)
    reasons = dict(zip(quarantine["path"], quarantine["reason"], strict=True))
    assert reasons.pop("data/raw/neg/empty.png") == "zero-byte"
    assert set(reasons.values()) <= {"duplicate"}
    kept = {hashlib.sha256(expected[path[len("data/raw/") :]]).hexdigest() for path in validated["path"]}
    distinct = {hashlib.sha256(d).hexdigest() for d in expected.values() if d}
    assert kept == distinct and len(validated) == len(distinct)  # every distinct image, once


# -- the kept batch for zip archives -------------------------------------------------------------
ZIP_BATCH = [
    ("zip-plain", [("neg/z1.png", A)], {"neg/z1.png": A}),
    ("zip-duplicate-name-last-wins", [("neg/zdup.png", B), ("neg/zdup.png", C)], {"neg/zdup.png": C}),
    ("zip-symlink-inside", [("pos/zlink.png", "sym", "../neg/z1.png")], {"pos/zlink.png": A}),
    (
        "zip-folder-symlink-inside",
        [(".lib/zl.png", F), ("pos/zdir", "sym", "../.lib")],
        {"pos/zdir/zl.png": F},
    ),
    ("zip-backslash-name", [("pos\\zback.png", D)], {"pos/zback.png": D}),
    ("zip-name-without-utf8-flag", [("neg/cafX.png", E)], {"neg/cafΘ.png": E}),  # cp437, as unzip reads it
    ("zip-dangling-symlink", [("neg/zgone.png", "sym", "gone.png")], {}),
]


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_zip_batch(proj, method):
    p = proj
    path = zip_of(
        fresh(p, f"zip{method}").with_suffix(".zip"), [m for _, ms, _ in ZIP_BATCH for m in ms], method
    )
    patch_zip(path, b"neg/cafX.png", b"neg/caf\xe9.png")
    ok(repro(p, source=str(path)))
    assert raw_files(p["work"]) == {rel: d for _, _, exp in ZIP_BATCH for rel, d in exp.items()}
    assert state(p["work"])["skipped"] == {"dangling-link": 1, "duplicate-name": 1, "hidden": 1}


# -- the kept batch for local folders --------------------------------------------------------------
def local_batch(src: Path, outside: Path) -> dict[str, bytes]:
    """A folder with every kept local case; returns the expected data/raw."""
    (src / "neg").mkdir(parents=True)
    (src / ".store" / "pos").mkdir(parents=True)
    (src / "neg" / "plain.png").write_bytes(A)
    (src / "neg" / "rel-link.png").symlink_to("plain.png")  # file link inside: followed
    (src / "neg" / "abs-link.png").symlink_to(src / "neg" / "plain.png")  # absolute, inside: followed
    (src / ".store" / "pos" / "p.png").write_bytes(B)
    (src / "pos").symlink_to(".store/pos")  # class folder link inside: followed
    (src / "neg" / "broken.png").symlink_to("missing.png")  # broken: skipped, counted
    os.link(src / "neg" / "plain.png", src / "neg" / "hardlinked.png")  # a hard link is a file
    (src / "neg" / os.fsdecode(b"caf\xe9.png")).write_bytes(C)  # not UTF-8: kept as Latin-1
    (src / "neg" / "a b,c'd #1.png").write_bytes(D)
    (src / ".git").mkdir()
    (src / ".git" / "x.png").write_bytes(E)  # hidden folder: skipped
    (src / "neg" / "notes.txt").write_text("x")  # not an image name: skipped
    (src / "empty-folder").mkdir()
    root_link = src.parent / (src.name + "-link")
    root_link.symlink_to(src)  # data.source itself a link: fine
    return {
        "neg/plain.png": A,
        "neg/rel-link.png": A,
        "neg/abs-link.png": A,
        "neg/hardlinked.png": A,
        "pos/p.png": B,
        "neg/café.png": C,
        "neg/a b,c'd #1.png": D,
    }


def test_local_batch_and_incremental_resync(proj):
    p = proj
    src = fresh(p, "local")
    expected = local_batch(src, p["outside"])
    ok(repro(p, source=str(src) + "-link"))
    assert raw_files(p["work"]) == expected
    assert state(p["work"])["skipped"] == {
        "broken-link": 1,
        "empty-folder": 1,
        "hidden": 2,
        "not-an-image-name": 1,
    }
    raw = p["work"] / "data/raw"
    inode = (raw / "neg/plain.png").stat().st_ino
    lock = (p["work"] / "dvc.lock").read_bytes()
    # no change: nothing copied, same state bytes, same dvc.lock
    state_bytes = (raw / ".ingest-state.json").read_bytes()
    out = ok(repro(p, source=str(src) + "-link"))
    assert "0 copied, 7 unchanged, 0 deleted" in out
    assert (raw / ".ingest-state.json").read_bytes() == state_bytes and (
        p["work"] / "dvc.lock"
    ).read_bytes() == lock
    # one file changed, one deleted, one file replaced by a folder of the same name
    (src / "neg" / "a b,c'd #1.png").write_bytes(F)
    (src / "neg" / os.fsdecode(b"caf\xe9.png")).unlink()
    (src / ".store" / "pos" / "p.png").rename(src / ".store" / "pos" / "tmp")
    (src / ".store" / "pos" / "p.png").mkdir()
    (src / ".store" / "pos" / "tmp").rename(src / ".store" / "pos" / "p.png" / "inner.png")
    out = ok(repro(p, source=str(src) + "-link"))
    assert "2 copied, 4 unchanged, 2 deleted" in out
    expected.update({"neg/a b,c'd #1.png": F, "pos/p.png/inner.png": B})
    del expected["neg/café.png"], expected["pos/p.png"]
    assert raw_files(p["work"]) == expected
    assert (raw / "neg/plain.png").stat().st_ino == inode  # unchanged files are hard links: not copied


# -- one-line refusals: each its own repro; everything byte-identical afterwards -------------------
def _local_with(link_name: str, target: str | Path):
    def build(p: dict) -> Path:
        src = fresh(p, "loc")
        (src / "neg" / "sub").mkdir(parents=True)
        (src / "neg" / "ok.png").write_bytes(A)
        (src / "neg" / "sub" / "ok2.png").write_bytes(B)
        target_path = p["outside"] / "secret.png" if target == "OUTSIDE_FILE" else target
        target_path = p["outside"] if target == "OUTSIDE_DIR" else target_path
        (src / "neg" / link_name).symlink_to(target_path)
        return src

    return build


def _archive(kind: str, members: list[tuple], **patch: object):
    def build(p: dict) -> Path:
        path = fresh(p, "arc").with_suffix(kind)
        if kind == ".zip":
            zip_of(path, members)
            if patch:
                patch_zip(path, **patch)
        else:
            tar_of(path, members)
        return path

    return build


def _truncated(kind: str):
    def build(p: dict) -> Path:
        path = fresh(p, "cut").with_suffix(kind)
        members = [(f"neg/{i}.png", png(100 + i)) for i in range(6)]
        zip_of(path, members) if kind == ".zip" else tar_of(path, members)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return build


def _plain(build):
    return lambda p: build(fresh(p, "src"))


def _mkdir_empty(path: Path) -> Path:
    path.mkdir()
    return path


def _text_only(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("x")
    return path


def _file(path: Path) -> Path:
    path.write_text("not an archive")
    return path


def _class_folder_outside(p: dict) -> Path:
    src = fresh(p, "cls")
    (src / "neg").mkdir(parents=True)
    (src / "neg" / "ok.png").write_bytes(A)
    (src / "pos").symlink_to(p["outside"])  # a whole class folder that lives elsewhere
    return src


def _same_utf8_name(p: dict) -> Path:
    src = fresh(p, "twin")
    (src / "neg").mkdir(parents=True)
    (src / "neg" / "café.png").write_bytes(A)
    (src / "neg" / os.fsdecode(b"caf\xe9.png")).write_bytes(B)
    return src


def _mutual_loop(p: dict) -> Path:
    src = fresh(p, "loop2")
    for a, b in (("neg", "pos"), ("pos", "neg")):
        (src / a).mkdir(parents=True, exist_ok=True)
        (src / a / f"{a}.png").write_bytes(A if a == "neg" else B)
        (src / a / "l").symlink_to(f"../{b}")
    return src


Q = re.escape
ARC = r"archive \S+"
ERROR_CASES = {  # case: (build source, data.* overrides, expected one-line message regex)
    # links leaving a local folder; loops (item 2)
    "local-file-link-outside": (
        _local_with("evil.png", "OUTSIDE_FILE"),
        {},
        r"source folder \S+ has links leaving it: neg/evil.png -> \S+/outside/secret.png; medpipe reads "
        r"nothing outside data.source: copy those files in or remove the links",
    ),
    "local-folder-link-outside": (
        _local_with("evil", "OUTSIDE_DIR"),
        {},
        r"source folder \S+ has links leaving it: neg/evil -> \S+/outside; .*",
    ),
    "local-absolute-link-to-etc": (
        _local_with("passwd.png", "/etc/passwd"),
        {},
        r"source folder \S+ has links leaving it: neg/passwd.png -> /etc/passwd; .*",
    ),
    "local-dangling-link-outside": (
        _local_with("gone.png", "/nonexistent/x.png"),
        {},
        r"source folder \S+ has links leaving it: neg/gone.png -> /nonexistent/x.png; .*",
    ),
    "local-class-folder-link-outside": (
        _class_folder_outside,
        {},
        r"source folder \S+ has links leaving it: pos -> \S+/outside; .*",
    ),
    "local-loop-to-parent": (
        _local_with("up", ".."),
        {},
        r"source folder \S+ has a symlink loop: neg/up -> \.\.; remove that link",
    ),
    "local-loop-to-itself": (
        _local_with("self.png", "self.png"),
        {},
        r"source folder \S+ has a symlink loop: neg/self.png -> self.png; remove that link",
    ),
    "local-mutual-folder-loop": (
        _mutual_loop,
        {},
        r"source folder \S+ has a symlink loop: (neg|pos)/l/l -> \.\./(neg|pos); remove that link",
    ),
    "local-two-names-one-utf8-name": (
        _same_utf8_name,
        {},
        Q("source folder ")
        + r"\S+"
        + Q(" has two files stored as 'neg/café.png' (one name is not UTF-8); rename one"),
    ),
    "local-missing-folder": (
        lambda p: fresh(p, "missing"),
        {},
        r"data.source '\S+' does not exist; check the path in params.yaml",
    ),
    "local-empty-folder": (
        _plain(_mkdir_empty),
        {},
        r"source folder \S+ is empty; put the images there or point data.source elsewhere",
    ),
    "local-no-images": (
        _plain(_text_only),
        {},
        r"source folder \S+ holds no image files \(.*\), only 1 other file\(s\) \(not-an-image-name: 1\); "
        r"check data.source",
    ),
    "plain-file-not-archive": (
        _plain(_file),
        {},
        r"data.source '\S+' is a file but not a .zip/.tar/.tar.gz/.tgz archive",
    ),
    # links leaving an archive, loops (item 2)
    "tar-symlink-outside": (
        _archive(".tar", [("neg/a.png", A), ("neg/l.png", "sym", "../../etc/passwd")]),
        {},
        ARC
        + Q(" has an unsafe member 'neg/l.png' (link to '../../etc/passwd' outside the archive); ")
        + ".*",
    ),
    "tar-absolute-symlink": (
        _archive(".tar", [("neg/a.png", A), ("neg/l.png", "sym", "/etc/passwd")]),
        {},
        ARC + Q(" has an unsafe member 'neg/l.png' (link to '/etc/passwd' outside the archive); ") + ".*",
    ),
    "tar-hardlink-outside": (
        _archive(".tar", [("neg/a.png", A), ("neg/h.png", "hard", "../x.png")]),
        {},
        ARC + Q(" has an unsafe member 'neg/h.png' (link to '../x.png' outside the archive); ") + ".*",
    ),
    "tar-folder-symlink-outside": (
        _archive(".tar", [("neg/a.png", A), ("pos", "sym", "../../home")]),
        {},
        ARC + Q(" has an unsafe member 'pos' (link to '../../home' outside the archive); ") + ".*",
    ),
    "zip-symlink-outside": (
        _archive(".zip", [("neg/a.png", A), ("neg/l.png", "sym", "../../../etc/passwd")]),
        {},
        ARC
        + Q(" has an unsafe member 'neg/l.png' (link to '../../../etc/passwd' outside the archive); ")
        + ".*",
    ),
    "tar-symlink-loop": (
        _archive(".tar", [("neg/a.png", "sym", "b.png"), ("neg/b.png", "sym", "a.png")]),
        {},
        ARC + Q(" has a symlink loop at 'neg/a.png'; remove that link and rebuild the archive"),
    ),
    "tar-folder-link-to-itself": (
        _archive(".tar", [("neg/a.png", A), ("neg/self", "sym", ".")]),
        {},
        ARC + Q(" has a symlink loop at 'neg/self'; remove that link and rebuild the archive"),
    ),
    "tar-folder-link-to-root": (
        _archive(".tar", [("neg/a.png", A), ("neg/root", "sym", "..")]),
        {},
        ARC + Q(" has a symlink loop at 'neg/root'; remove that link and rebuild the archive"),
    ),
    # impossible member trees, encryption, compression (item 8)
    "tar-file-and-folder-same-name": (
        _archive(".tar", [("neg/x.png", A), ("neg/x.png/y.png", B)]),
        {},
        ARC
        + Q(
            " has both a file 'neg/x.png' and a folder of that name (holding 'neg/x.png/y.png'); rename one of them"
        ),
    ),
    "zip-file-and-folder-same-name": (
        _archive(".zip", [("neg/x.png", A), ("neg/x.png/y.png", B)]),
        {},
        ARC
        + Q(
            " has both a file 'neg/x.png' and a folder of that name (holding 'neg/x.png/y.png'); rename one of them"
        ),
    ),
    "tar-name-over-255-bytes": (
        _archive(".tar", [("neg/" + "n" * 300 + ".png", A)]),
        {},
        ARC
        + Q(" has a name longer than 255 bytes ('nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'..., 304 bytes) ")
        + Q("that no file system can store; shorten it"),
    ),
    "zip-name-over-255-bytes-multibyte": (
        _archive(".zip", [("neg/" + "é" * 130 + ".png", A)]),
        {},
        ARC
        + r" has a name longer than 255 bytes \('é+'\.\.\., 264 bytes\) that no file system can store; shorten it",
    ),
    "zip-encrypted-member": (
        _archive(".zip", [("neg/a.png", A), ("neg/b.png", B)], old=b"neg/b.png", flag=0x1),
        {},
        ARC
        + Q(" has 1 encrypted member(s) (e.g. 'neg/b.png'); medpipe cannot decrypt archives: extract it ")
        + Q("with its password and set data.source to the folder"),
    ),
    "zip-utf8-flag-on-invalid-name": (
        _archive(".zip", [("neg/cafX.png", A)], old=b"neg/cafX.png", new=b"neg/caf\xe9.png", flag=0x800),
        {},
        ARC
        + r" has a member name flagged UTF-8 that is not valid UTF-8 \(b'.*'\); repack it with a tool that "
        r"writes UTF-8 names",
    ),
    "zip-unsupported-compression": (
        _archive(".zip", [("neg/a.png", A)], old=b"neg/a.png", method=9),
        {},
        ARC + r" uses an unsupported compression \(.*\); repack it as zip/deflate or tar.gz",
    ),
    # size guard: free disk by default, explicit cap optional (item 8)
    "tar-header-bomb-over-free-disk": (
        lambda p: huge_tar_header(fresh(p, "bomb").with_suffix(".tar"), 2**50),
        {},
        ARC
        + r" unpacks to 1048576\.00 GiB: ingest needs 1048576\.00 GiB \(the files plus DVC's cache copy of "
        r"the new ones\) but only [\d.]+ [GM]iB is free; free disk space first",
    ),
    "explicit-cap": (
        _archive(".tar", [(f"neg/{i}.png", png(200 + i)) for i in range(4)]),
        {"max_archive_bytes": 1000},
        ARC
        + Q(" unpacks to more than data.max_archive_bytes (1000 bytes); raise it if the archive is genuine"),
    ),
    "too-many-members": (
        _archive(".zip", [(f"neg/{i}.png", png(300 + i)) for i in range(5)]),
        {"max_archive_members": 3},
        ARC + Q(" has more than 3 members; raise data.max_archive_members if it is genuine"),
    ),
    # unsafe / broken archives
    "zip-path-traversal": (
        _archive(".zip", [("neg/a.png", A), ("../evil.png", B)]),
        {},
        ARC + Q(" has an unsafe member '../evil.png' (path traversal in '../evil.png'); ") + ".*",
    ),
    "zip-absolute-member": (
        _archive(".zip", [("neg/a.png", A), ("/tmp/evil.png", B)]),
        {},
        ARC + Q(" has an unsafe member '/tmp/evil.png' (absolute path '/tmp/evil.png'); ") + ".*",
    ),
    "tar-traversal-inside-path": (
        _archive(".tar", [("neg/a.png", A), ("neg/../../evil.png", B)]),
        {},
        ARC
        + Q(" has an unsafe member 'neg/../../evil.png' (path traversal in 'neg/../../evil.png'); ")
        + ".*",
    ),
    "tar-device-member": (
        _archive(".tar", [("neg/a.png", A), ("neg/dev.png", "dev")]),
        {},
        ARC + Q(" has an unsafe member 'neg/dev.png' (device, fifo or other special file); ") + ".*",
    ),
    "zip-truncated": (
        _truncated(".zip"),
        {},
        ARC + r" is corrupt or truncated \(.*\); download it again",
    ),
    "tar-gz-truncated": (
        _truncated(".tar.gz"),
        {},
        ARC + r" is corrupt or truncated \(.*\); download it again",
    ),
    "archive-without-images": (
        _archive(".zip", [("neg/a.txt", b"x")]),
        {},
        ARC + Q(" holds no image files (.png/.jpg/.jpeg/.tif/.bmp/.npz)"),
    ),
    "archive-missing": (
        lambda p: fresh(p, "gone").with_suffix(".zip"),
        {},
        r"data.source '\S+' does not exist; check the archive path in params.yaml",
    ),
    # credentials never in params (item 5): refused at load, never echoed
    "credentials-in-s3-source": (
        lambda p: f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix",
        {},
        Q(
            "params: 'data.source' holds credentials (s3://***@bucket/prefix); params are committed and logged: "
        )
        + Q(
            "remove them and use the AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        )
        + Q("an instance role)"),
    ),
    "credentials-in-endpoint": (
        lambda p: "s3://bucket/prefix",
        {"s3_endpoint_url": f"http://minio:{SECRET}@127.0.0.1:9000"},
        Q("params: 'data.s3_endpoint_url' holds credentials (http://***@127.0.0.1:9000); ") + ".*",
    ),
    "unsupported-scheme-with-credentials": (
        lambda p: f"ftp://user:{SECRET}@host/data",
        {},
        Q("params: 'data.source' holds credentials (ftp://***@host/data); ") + ".*",
    ),
    "unsupported-scheme": (
        lambda p: "ftp://host/data",
        {},
        Q("data.source 'ftp://host/data' uses unsupported scheme 'ftp://'; ") + ".*",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_refused_with_one_line_and_nothing_changed(proj, case):
    build, data, message = ERROR_CASES[case]
    refuse(proj, build(proj), message, **data)


# -- failures in the middle of an ingest ---------------------------------------------------------
def test_failure_after_staging_and_kill_during_ingest_leave_raw_identical(proj):
    p = proj
    before = good_baseline(p)
    src = fresh(p, "many")
    for i in range(1500):
        (src / ("neg" if i % 2 else "pos") / f"m{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (src / ("neg" if i % 2 else "pos") / f"m{i}.png").write_bytes(png(i, 24))
    # the manifest cannot be written (staged, before the swap): rc != 0, nothing changed
    blocker = p["work"] / "data/manifests/.raw.csv.pending.tmp"
    blocker.mkdir()
    proc = repro(p, source=str(src))
    assert proc.returncode != 0 and snapshot(p["work"]) == before
    blocker.rmdir()
    # kill -9 while files are being staged: nothing changed; the next run completes
    params = json.loads(json.dumps(p["base"]))
    params["data"]["source"] = str(src)
    (p["work"] / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "-s", "-f", "ingest"],
        cwd=p["work"],
        env=p["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not list((p["work"] / "data").glob(".raw.staging-*/*/*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert snapshot(p["work"]) == before
    # an interrupted two-rename swap (data/raw moved aside, not yet replaced) is put back
    os.rename(p["work"] / "data/raw", p["work"] / "data/.raw.previous")
    out = ok(repro(p, source=str(src)))
    assert "restored" in out and "1500 copied" in out
    assert len(raw_files(p["work"])) == 1500 and not (p["work"] / "data/.raw.previous").exists()


# -- a planted secret never lands anywhere (item 5) ------------------------------------------------
def test_planted_secret_reaches_no_log_lock_mlflow_or_lineage(tmp_path, moto_endpoint, aws_env, monkeypatch):
    """Credentials from the AWS chain (a secret with '/' and '+') through a full `dvc repro` from
    S3 to a registered model, then the same secret pasted into params: nowhere in any output."""
    import boto3

    from pipeline.sources import sample

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(GIT_ENV)
    work = make_git_dvc_project(tmp_path / "proj", "secret-scan", env)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="scans")
    from pipeline.config import SampleConfig

    for path in sample.write(SampleConfig(patients=12, patches_per_patient=40, seed=3), tmp_path / "idc"):
        s3.upload_file(str(path), "scans", f"idc/{path.relative_to(tmp_path / 'idc').as_posix()}")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"].update(source="s3://scans/idc", s3_endpoint_url=moto_endpoint)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    outputs = []
    for args in (["dvc", "repro"], ["medpipe", "lineage", "model", "secret-scan@challenger", "--json"]):
        cmd = [sys.executable, "-m", *args] if args[0] == "dvc" else args
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        outputs.append(proc.stdout + proc.stderr)
    assert "roc_auc" in outputs[1]  # lineage answered
    for key, value in (
        ("source", f"s3://AKIAX:{SECRET}@scans/idc"),
        ("s3_endpoint_url", moto_endpoint.replace("//", f"//k:{SECRET}@")),
    ):
        bad = json.loads(json.dumps(params))
        bad["data"][key] = value
        (work / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "repro"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode != 0 and "holds credentials" in proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    needles = [SECRET.encode(), SECRET.replace("/", "%2F").replace("+", "%2B").encode()]
    for text in outputs:
        assert not any(n in text.encode() for n in needles)
    scanned = 0
    for path in work.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.name != "params.yaml":
            data = path.read_bytes()
            assert not any(n in data for n in needles), f"secret found in {path}"
            scanned += 1
    assert scanned > 50 and (work / "mlflow.db").is_file() and (work / "dvc.lock").is_file()


CASES = (
    [f"tar:{c}" for c, _, _ in TAR_BATCH]
    + [f"zip:{c}" for c, _, _ in ZIP_BATCH]
    + [
        f"local:{c}"
        for c in (
            "file-link",
            "abs-link",
            "class-folder-link",
            "broken-link",
            "hard-link",
            "non-utf8",
            "odd-name",
            "hidden-folder",
            "not-image",
            "root-is-link",
            "empty-folder-counted",
        )
    ]
    + ["local:no-change", "local:changed+deleted+file-became-folder"]
    + list(ERROR_CASES)
    + ["manifest-unwritable", "kill-9-while-staging", "interrupted-swap-restored", "planted-secret-scan"]
)


def test_case_count():
    assert len(CASES) == len(set(CASES)) >= 80
