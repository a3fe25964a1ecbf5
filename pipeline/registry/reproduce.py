"""`medpipe reproduce <name>@<version>`: rebuild a registered version from its git revision and compare.

The version's `git.commit` is checked out in a temporary `git worktree` that shares this repo's
DVC cache. The raw data of that revision is restored from its dvc.lock (`dvc checkout ingest`
from the cache, else `dvc pull ingest` from the default remote) instead of re-syncing
data.source, which may have changed since; then every stage after ingest up to evaluate is
forced (`dvc repro --force --single-item`, never register), with PYTHONPATH pointing at the
worktree so the stages run the code of that revision. When that revision has no dvc.lock with an
ingest entry (a first run, never committed) or the version was registered from a dirty tree, the
dvc.lock and params.yaml stored with the version's run are placed in the worktree first
(pipeline.registry.recorded); only a version that stored neither falls back to
`dvc repro --force evaluate`, which re-syncs data.source. Every registered metric is compared with
the reproduced one; exit 0 when all are within the absolute tolerance, 1 otherwise. The worktree
is removed afterwards.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core import dvc_files, manifest
from pipeline.core.errors import MedpipeError
from pipeline.core.provenance import flat_metrics
from pipeline.registry import client as registry
from pipeline.registry import recorded
from pipeline.registry.lineage import _registry_cfg, _write

log = logging.getLogger(__name__)
TARGET = "evaluate"


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise MedpipeError(f"`{' '.join(cmd[-3:])}` failed in {cwd}: {tail[0]}")
    return done.stdout


# Lines of a stage's output worth showing while `reproduce` waits on it (the rest is DEBUG). The
# epoch lines come from pipeline.training.epoch_log; revisions before it logged them from .fit.
_PROGRESS = (
    "Running stage",
    "pipeline.training.epoch_log: epoch",
    "pipeline.training.fit: epoch",
    "pipeline.stages.",
)


def _run_streamed(cmd: list[str], cwd: Path, env: dict, what: str) -> None:
    """Run cmd, logging its progress lines as they come (a stage can take many minutes)."""
    started = time.perf_counter()
    tail: list[str] = []
    env = {**env, "PYTHONUNBUFFERED": "1"}  # lines in the order they were written, as they come
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if not line:
                continue
            tail = [*tail[-19:], line]
            level = logging.INFO if any(p in line for p in _PROGRESS) else logging.DEBUG
            log.log(level, "  %s | %s", what, line)
        code = proc.wait()
    if code != 0:
        raise MedpipeError(f"`{' '.join(cmd[-3:])}` failed in {cwd}: {tail[-1] if tail else 'no output'}")
    log.info("  %s done in %s", what, _elapsed(time.perf_counter() - started))


def _elapsed(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


@contextmanager
def worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of commit, removed (and pruned) on exit."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo).returncode != 0:
        raise MedpipeError(f"git revision {commit} is not in {repo}; fetch it (git fetch) and retry")
    with tempfile.TemporaryDirectory(prefix="medpipe-reproduce-") as tmp:
        path = Path(tmp) / "worktree"
        _run(["git", "worktree", "add", "--detach", str(path), commit], repo)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=repo, capture_output=True)
            subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)


def metrics_path(dvc_yaml: Path) -> Path:
    """The evaluate stage's metrics.json (every number a version records), as dvc.yaml declares it:
    an out, or the metrics file of revisions from before reports/headline.json."""
    body = dvc_files.stages(dvc_yaml).get(TARGET, {})
    paths = [dvc_files.entry_path(e) for section in ("outs", "metrics") for e in body.get(section) or []]
    for path in paths:
        if path.name == "metrics.json":
            return path
    raise MedpipeError(f"{dvc_yaml} declares no metrics.json for stage '{TARGET}'")


def _stages_after_ingest(tree: Path) -> list[str] | None:
    """Stages to force after restoring ingest's outputs; None when the revision's lock cannot restore them."""
    lock_path = tree / "dvc.lock"
    locked = dvc_files.stages(lock_path) if lock_path.is_file() else {}
    stages = list(dvc_files.stages(tree / "dvc.yaml"))
    if "ingest" not in locked or "ingest" not in stages or TARGET not in stages:
        return None
    return stages[stages.index("ingest") + 1 : stages.index(TARGET) + 1]


def _restore_ingest(tree: Path, env: dict) -> None:
    """The revision's data/raw + raw manifest: from the shared cache, else from the DVC remote."""
    done = subprocess.run(_dvc("checkout", "ingest"), cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        log.info("ingest outputs not all in the cache; pulling them from the DVC remote")
        _run(_dvc("pull", "ingest"), tree, env)


def rebuild(
    repo: Path, commit: str, stored: dict[str, Path] | None = None, dirty: bool = False
) -> dict[str, float]:
    """Metrics of the pipeline up to evaluate at commit, on that commit's data (or on the stored
    dvc.lock + params.yaml, see recorded.place), sharing repo's DVC cache."""
    cache = _run(_dvc("cache", "dir"), repo).strip()
    log.info("reproduce %s: checking out a temporary worktree", commit[:12])
    with worktree(repo, commit) as tree:
        _run(_dvc("cache", "dir", "--local", cache), tree)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["MEDPIPE_TRAIN_RUN"] = "0"  # a rebuild is no training to track in the registry
        recorded.place(tree, stored or {}, dirty)
        stages = _stages_after_ingest(tree)
        if stages is None:
            log.warning("%s: dvc.lock records no ingest outputs; re-syncing data.source instead", commit[:12])
            _run_streamed(_dvc("repro", "--force", TARGET), tree, env, f"dvc repro --force {TARGET}")
        else:
            log.info("reproduce %s: restoring its raw data (DVC cache, else remote)", commit[:12])
            _restore_ingest(tree, env)
            log.info("reproducing %s in %s on its recorded data: %s", commit[:12], tree, ", ".join(stages))
            for i, stage in enumerate(stages, 1):
                log.info("reproduce [%d/%d] %s", i, len(stages), stage)
                cmd = _dvc("repro", "--force", "--single-item", stage)
                _run_streamed(cmd, tree, env, f"[{i}/{len(stages)}] {stage}")
        return flat_metrics(manifest.read_json(tree / metrics_path(tree / "dvc.yaml")))


def compare(registered: dict[str, float], reproduced: dict[str, float], tolerance: float) -> list[dict]:
    rows = []
    for name in sorted(registered):
        new = reproduced.get(name, math.nan)
        diff = abs(new - registered[name])
        rows.append(
            {
                "metric": name,
                "registered": registered[name],
                "reproduced": new,
                "diff": diff,
                "ok": diff <= tolerance + 1e-9,
            }
        )  # float noise; NaN (missing) is never ok
    return rows


def format_table(rows: list[dict], tolerance: float) -> str:
    lines = [f"{'metric':<20} {'registered':>11} {'reproduced':>11} {'|diff|':>9}  within {tolerance}"]
    for r in rows:
        lines.append(
            f"{r['metric']:<20} {r['registered']:>11.4f} {r['reproduced']:>11.4f} {r['diff']:>9.4f}  "
            f"{'yes' if r['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def main(ref: str, tolerance: float = 0.02) -> int:
    client = registry.connect(_registry_cfg())
    mv = registry.resolve(client, ref)
    commit = mv.tags.get("git.commit", "unknown")
    if commit == "unknown":
        raise MedpipeError(f"{ref} records no git revision (tag git.commit); it cannot be reproduced")
    dirty = mv.tags.get("git.dirty") == "true"
    if dirty:
        log.warning("%s was registered from a dirty tree: uncommitted code changes are not reproduced", ref)
    registered = registry.version_metrics(client, mv)
    if not registered:
        raise MedpipeError(f"{ref} has no recorded metrics to compare with")
    repo = Path(_run(["git", "rev-parse", "--show-toplevel"], Path.cwd()).strip())
    with tempfile.TemporaryDirectory(prefix="medpipe-recorded-") as tmp:
        stored = recorded.download(client, mv.run_id, Path(tmp))
        rows = compare(registered, rebuild(repo, commit, stored, dirty), tolerance)
    _write(format_table(rows, tolerance))
    failed = [r["metric"] for r in rows if not r["ok"]]
    _write(
        f"{mv.name} v{mv.version}: " + (f"NOT reproduced ({', '.join(failed)})" if failed else "reproduced")
    )
    return 1 if failed else 0
