"""Commit DVC's bookkeeping (dvc.lock, its small result files, DVC's .gitignore entries) after `dvc repro`.

The register stage tags a model version with the git HEAD it ran on. Without this commit the
HEAD of a nightly run does not hold the dvc.lock that produced the model, so `medpipe reproduce`
cannot find that revision's data. The flow therefore commits, BEFORE register:

- `dvc.lock` when it differs from HEAD,
- the `cache: false` metrics and plots files of dvc.yaml's stages and the data files of its
  top-level plots (reports/metrics.json, reports/train/history.csv, reports/eval/roc.csv, ...)
  that changed, so `dvc metrics diff` / `dvc plots diff` / `dvc exp show` at that revision show
  this model's numbers (DVC keeps no cached copy of them; git is their only history), and
- a `.gitignore` that sits next to an output declared in dvc.yaml, only when its change against
  HEAD is purely added `/<output name>` lines (what DVC writes); a user's edit is never committed.

Nothing else is staged or committed: `git commit --only -- <those paths>` leaves the user's staged
and unstaged changes exactly as they were (register then records `git.dirty=true` honestly when
tracked code or params differ from HEAD). Outside a git repo the step is skipped.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core import dvc_files
from pipeline.core.errors import MedpipeError

log = logging.getLogger(__name__)
LOCK = "dvc.lock"
FALLBACK_IDENTITY = ("medpipe nightly", "medpipe-nightly@localhost")


class LockCommitFailed(MedpipeError):
    """git refused the dvc.lock commit (hook, identity, repository state)."""


@dataclass(frozen=True)
class LockCommit:
    """What the step did: the HEAD the register stage will record, the files committed, and why."""

    head: str | None  # None outside git
    files: tuple[str, ...]
    note: str


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LockCommitFailed(f"`git {' '.join(args[:2])}` failed in {project}: {tail[0]}")
    return done


def declared_outputs(project: Path) -> list[Path]:
    """Every path dvc.yaml declares as an out, metric or plot of a stage (relative to project)."""
    paths = []
    for body in dvc_files.stages(project / "dvc.yaml").values():
        for section in ("outs", "metrics", "plots"):
            paths += [dvc_files.entry_path(entry) for entry in body.get(section) or []]
    return paths


def result_files(project: Path) -> list[str]:
    """`cache: false` metrics/plots of the stages, their `cache: false` JSON reports (validation, split
    and balance counters: kept out of `dvc metrics show`, still committed for `git log`), plus top-level
    plot data files (relative paths)."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text()) or {}
    paths: list[str] = []
    for stage, body in (spec.get("stages") or {}).items():
        for section in ("metrics", "plots", "outs"):
            for entry in body.get(section) or []:
                options = next(iter(entry.values())) if isinstance(entry, dict) else None
                path = dvc_files.entry_path(entry)
                # register's own record is written after this commit, by the register stage
                report = section != "outs" or (path.suffix == ".json" and stage != "register")
                if report and isinstance(options, dict) and options.get("cache") is False:
                    paths.append(path.as_posix())
    for plot in spec.get("plots") or []:
        name, body = next(iter(plot.items())) if isinstance(plot, dict) else (plot, None)
        y = body.get("y") if isinstance(body, dict) else None
        paths += list(y) if isinstance(y, dict) else [name] if Path(name).suffix else []
    return list(dict.fromkeys(paths))


def _is_tracked(project: Path, path: str) -> bool:
    return _git(project, "ls-files", "--error-unmatch", "--", path, check=False).returncode == 0


def _dvc_only_change(project: Path, gitignore: str, entries: set[str]) -> bool:
    """True when the .gitignore's change against HEAD only adds DVC output entries."""
    if _is_tracked(project, gitignore):
        diff = _git(project, "diff", "--no-color", "-U0", "HEAD", "--", gitignore).stdout.splitlines()
        body = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        removed = [line for line in body if line.startswith("-")]
        added = [line[1:].strip() for line in body if line.startswith("+")]
    else:
        removed, added = [], [line.strip() for line in (project / gitignore).read_text().splitlines()]
    added = [line for line in added if line]
    return not removed and bool(added) and set(added) <= entries


def bookkeeping_changes(project: Path) -> list[str]:
    """dvc.lock, changed result files and DVC-written .gitignore files (paths relative to project)."""
    by_dir: dict[str, set[str]] = {}
    for out in declared_outputs(project):
        parent = out.parent.as_posix()
        name = "/" + out.name
        by_dir.setdefault(".gitignore" if parent == "." else f"{parent}/.gitignore", set()).add(name)
    gitignores = sorted(p for p in by_dir if (project / p).is_file())
    results = [p for p in result_files(project) if (project / p).is_file()]
    status = _git(
        project, "status", "--porcelain", "--untracked-files=all", "--", LOCK, *gitignores, *results
    ).stdout  # ignored files are not listed: a result file the user git-ignores stays out
    changed = {line[3:].strip().strip('"') for line in status.splitlines() if line.strip()}
    prefix = _git(project, "rev-parse", "--show-prefix").stdout.strip()
    changed = {c.removeprefix(prefix) for c in changed}  # porcelain paths are relative to the top level
    files = [LOCK] if LOCK in changed else []
    files += [r for r in results if r in changed]
    files += [g for g in gitignores if g in changed and _dvc_only_change(project, g, by_dir[g])]
    return files


def _identity_args(project: Path) -> list[str]:
    """`-c user.name/-c user.email` fallbacks when git has no identity configured (a bare CI box)."""
    if _git(project, "config", "user.email", check=False).stdout.strip():
        return []
    name, email = FALLBACK_IDENTITY
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def commit_dvc_lock(project: Path, message: str) -> LockCommit:
    """Commit only DVC's bookkeeping files; returns the resulting HEAD (None outside git)."""
    inside = _git(project, "rev-parse", "--is-inside-work-tree", check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return LockCommit(None, (), f"{project} is not a git repository: dvc.lock not committed")
    if _git(project, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        return LockCommit(None, (), f"{project} has no commit yet: dvc.lock not committed")
    files = bookkeeping_changes(project)
    if not files:
        head = _git(project, "rev-parse", "HEAD").stdout.strip()
        return LockCommit(head, (), f"dvc.lock already committed at {head[:12]}")
    _git(project, "add", "--", *files)
    # --only: exactly these paths, whatever else the user has staged; --no-verify: a mechanical
    # commit of DVC's own files must not depend on the user's code hooks.
    _git(
        project,
        *_identity_args(project),
        "commit",
        "--no-verify",
        "--only",
        "-q",
        "-m",
        message,
        "--",
        *files,
    )
    head = _git(project, "rev-parse", "HEAD").stdout.strip()
    log.info("committed %s as %s", ", ".join(files), head[:12])
    return LockCommit(head, tuple(files), f"committed {', '.join(files)} as {head[:12]}")
