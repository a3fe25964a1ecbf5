"""A finished checkpoints/ keeps a note DVC ignores: no "'checkpoints' is empty" warning on the
default repro, and dvc.lock still records an empty directory, the state the GPU hand-off recreates
on the CPU host (flows/handoff.py restore_empty_dirs), so `dvc status train` stays clean there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from helpers.git_dvc_project import GIT_ENV

from flows import handoff
from pipeline.training.checkpoints import NOTE

ROOT = Path(__file__).resolve().parents[2]
EMPTY_DIR_MD5 = "d751713988987e9331980363e24189ce.dir"
TRAIN = (
    "from pathlib import Path; from pipeline.training.checkpoints import CheckpointDir; "
    "CheckpointDir(Path('checkpoints')).clear(); Path('models').mkdir(exist_ok=True); "
    "Path('models/model.txt').write_text('weights')"
)


def _run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_finished_checkpoints_note_is_ignored_by_dvc(tmp_path):
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    shutil.copy2(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    stage = {"cmd": f'{sys.executable} -c "{TRAIN}"', "outs": ["models", {"checkpoints": {"cache": False, "persist": True}}]}  # fmt: skip
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    _run(["git", "init", "-q"], tmp_path, env)
    _run([sys.executable, "-m", "dvc", "init", "-q"], tmp_path, env)

    out = _run([sys.executable, "-m", "dvc", "repro"], tmp_path, env)
    assert "is empty" not in out
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [NOTE]
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    entry = next(o for o in lock["stages"]["train"]["outs"] if o["path"] == "checkpoints")
    assert (entry["md5"], entry["nfiles"]) == (EMPTY_DIR_MD5, 0)

    # the CPU host after a GPU training: checkpoints/ is recreated empty from dvc.lock, no note
    shutil.rmtree(tmp_path / "checkpoints")
    assert handoff.restore_empty_dirs(tmp_path) == ["checkpoints"]
    assert "up to date" in _run([sys.executable, "-m", "dvc", "status", "train"], tmp_path, env)
