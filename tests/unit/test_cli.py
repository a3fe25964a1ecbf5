"""The `medpipe` CLI: one-line errors, exit codes, and no partial outputs."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from pipeline.cli import commands as cli
from pipeline.cli import stage_runner

PROJECT_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_params_typo_is_one_line_and_exit_2(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epoch: 3\n")
    code = cli.main(["stage", "split", "--params", str(params), "-o", f"splits={tmp_path / 's'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "medpipe: error: params: unknown key 'train.epoch'; did you mean 'epochs'?\n"


def test_malformed_io_flag(capsys):
    code = cli.main(["stage", "split", "--params", str(PROJECT_PARAMS), "-i", "nokey"])
    assert code == 2
    assert "-i expects key=path, got 'nokey'" in capsys.readouterr().err


def test_unknown_stage_is_rejected_by_argparse():
    with pytest.raises(SystemExit) as exc:
        cli.main(["stage", "fit"])
    assert exc.value.code == 2


def test_failing_stage_leaves_no_partial_outputs(tmp_path, monkeypatch):
    """Outputs created by a failing stage are removed; outputs that existed before are kept."""
    created = tmp_path / "new_out"
    kept = tmp_path / "persisted"
    kept.mkdir()
    (kept / "old.txt").write_text("from an earlier good run")

    def run(cfg, inputs, outputs):
        outputs["new"].mkdir()
        (outputs["new"] / "half.csv").write_text("partial")
        raise RuntimeError("boom")

    fake = types.ModuleType("pipeline.stages.split")
    fake.run = run
    monkeypatch.setitem(sys.modules, "pipeline.stages.split", fake)
    with pytest.raises(RuntimeError, match="boom"):
        stage_runner.run_stage("split", PROJECT_PARAMS, {}, {"new": created, "kept": kept})
    assert not created.exists()
    assert (kept / "old.txt").read_text() == "from an earlier good run"


def test_interrupted_stage_keeps_resume_state(tmp_path, monkeypatch):
    """Ctrl-C during training must not delete the checkpoints a rerun resumes from."""
    checkpoints = tmp_path / "checkpoints"

    def run(cfg, inputs, outputs):
        outputs["checkpoints"].mkdir()
        (outputs["checkpoints"] / "epoch-3.keras").write_text("weights")
        raise KeyboardInterrupt

    fake = types.ModuleType("pipeline.stages.train")
    fake.run = run
    monkeypatch.setitem(sys.modules, "pipeline.stages.train", fake)
    with pytest.raises(KeyboardInterrupt):
        stage_runner.run_stage("train", PROJECT_PARAMS, {}, {"checkpoints": checkpoints})
    assert (checkpoints / "epoch-3.keras").read_text() == "weights"


def _subcommands(parser, prefix=()):
    """(path, parser) of every subcommand, nested ones included."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*prefix, name), child
                yield from _subcommands(child, (*prefix, name))


def test_every_subcommand_has_a_description_and_an_example():
    parser = cli.build_parser()
    found = list(_subcommands(parser))
    assert {path for path, _ in found} >= {("stage",), ("lineage",), ("registry",), ("registry", "history")}
    for path, sub in found:
        text = sub.format_help()
        assert sub.description and len(sub.description) > 30, path
        assert "examples:" in text and f"medpipe {' '.join(path)} " in text, path


def test_every_top_level_command_has_a_handler():
    top = {path[0] for path, _ in _subcommands(cli.build_parser()) if len(path) == 1}
    assert top == set(cli.COMMANDS)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("medpipe ") and out.strip() != "medpipe unknown"


def _project_with_params(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text((PROJECT_PARAMS.parent / "dvc.yaml").read_text())
    params = tmp_path / "params.yaml"
    params.write_text(PROJECT_PARAMS.read_text())
    return params


def test_params_changed_under_a_stage_fail_it_and_remove_its_outputs(tmp_path, monkeypatch, capsys):
    """params.yaml edited while train runs: dvc.lock would record values the model never saw."""
    params = _project_with_params(tmp_path, monkeypatch)

    def run(cfg, inputs, outputs):
        outputs["model"].mkdir()
        (outputs["model"] / "model.keras").write_text(f"trained {cfg.train.epochs} epochs")
        params.write_text(params.read_text().replace("epochs: 12", "epochs: 3"))  # the user edits
        return {}

    fake = types.ModuleType("pipeline.stages.train")
    fake.run = run
    monkeypatch.setitem(sys.modules, "pipeline.stages.train", fake)
    code = cli.main(["stage", "train", "-o", "model=models"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("medpipe: error: params.yaml changed while stage train ran (train: {")
    assert "so the stage fails and dvc.lock keeps its previous record: run dvc repro again\n" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "models").exists()


def test_params_the_stage_does_not_use_may_change_while_it_runs(tmp_path, monkeypatch):
    params = _project_with_params(tmp_path, monkeypatch)

    def run(cfg, inputs, outputs):
        params.write_text(params.read_text().replace("bootstrap: 200", "bootstrap: 50"))  # evaluate's
        return {"ok": True}

    fake = types.ModuleType("pipeline.stages.train")
    fake.run = run
    monkeypatch.setitem(sys.modules, "pipeline.stages.train", fake)
    assert stage_runner.run_stage("train", params, {}, {}) == {"ok": True}


def test_stage_param_keys_are_dvc_yamls():
    keys = stage_runner.stage_param_keys("split", PROJECT_PARAMS.parent / "dvc.yaml")
    assert keys == ["split"]
    assert stage_runner.stage_param_keys("nope", PROJECT_PARAMS.parent / "dvc.yaml") is None
