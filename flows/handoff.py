"""Train on a GPU host of its own: the hand-off goes through git and the DVC remote, not a shared disk.

Parent (the nightly run, CPU host), before train:
  1. refuses when train's git-tracked deps, params.yaml or dvc.yaml differ from HEAD (the GPU host
     trains the committed code; a dirty tree would make the parent retrain on its return);
  2. commits dvc.lock (flows.lock_commit) so HEAD holds the upstream stages' entries;
  3. `dvc push` of train's DVC-tracked deps, `git push <remote> HEAD:refs/medpipe/handoff/<run>`.
GPU worker (flows.train_gpu, handoff="git"), in its own checkout:
  4. `git fetch <url> refs/medpipe/handoff/<run>` + detached checkout of exactly that commit;
  5. `dvc pull` of train's deps, `dvc repro --single-item train`, `dvc push train`;
  6. commits dvc.lock + train's `cache: false` results and pushes it to refs/medpipe/trained/<run>.
Parent, after the child completed:
  7. fetches that ref, checks it is one commit on top of the handed-off one, takes its files and
     moves HEAD to it (`git reset --soft`: the user's own changes stay as they were);
  8. `dvc pull train`, recreates train's empty persisted dirs (checkpoints/), and checks
     `dvc status train` is clean, so evaluate and register never retrain on the CPU.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from flows.dvc_runner import StageFailed
from pipeline.core import dvc_files

HANDOFF_REF = "refs/medpipe/handoff/{run}"
TRAINED_REF = "refs/medpipe/trained/{run}"
TRAIN = "train"


class HandoffFailed(StageFailed):
    """A git step of the GPU hand-off failed, or the two checkouts disagree."""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise HandoffFailed(f"`git {' '.join(args[:2])}` failed in {root}: {tail[0]}")
    return done.stdout.rstrip()  # porcelain lines start with a space


def _outs(stages: dict) -> dict[str, dict]:
    """Every declared out/metric/plot path -> its options ({} when none)."""
    found = {}
    for body in stages.values():
        for section in ("outs", "metrics", "plots"):
            for entry in body.get(section) or []:
                opts = next(iter(entry.values())) if isinstance(entry, dict) else None
                found[dvc_files.entry_path(entry).as_posix()] = opts if isinstance(opts, dict) else {}
    return found


def dvc_deps(root: Path, stage: str = TRAIN) -> list[str]:
    """The stage's deps that DVC caches (outputs of other stages, `.dvc` files): what to push/pull."""
    stages = dvc_files.stages(root / "dvc.yaml")
    outs = {p: o for p, o in _outs(stages).items() if o.get("cache", True)}
    deps = [dvc_files.entry_path(d).as_posix() for d in stages[stage].get("deps") or []]
    return [
        d for d in deps if any(d == o or d.startswith(o + "/") for o in outs) or (root / f"{d}.dvc").is_file()
    ]


def git_inputs(root: Path, stage: str = TRAIN) -> list[str]:
    """What git carries to the GPU host for the stage: its other deps, params.yaml, dvc.yaml."""
    stages = dvc_files.stages(root / "dvc.yaml")
    deps = [dvc_files.entry_path(d).as_posix() for d in stages[stage].get("deps") or []]
    cached = set(dvc_deps(root, stage))
    return [d for d in deps if d not in cached] + ["params.yaml", "dvc.yaml"]


def require_clean(root: Path, stage: str = TRAIN) -> None:
    """HandoffFailed when a git-carried input of the stage differs from HEAD (or is untracked)."""
    paths = [p for p in git_inputs(root, stage) if (root / p).exists()]
    dirty = git(root, "status", "--porcelain", "--untracked-files=all", "--", *paths).splitlines()
    if dirty:
        listed = ", ".join(line[3:] for line in dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise HandoffFailed(
            f"the GPU host trains the committed code, but {listed} differ(s) from HEAD in {root}: "
            "commit them, or run with gpu_handoff='shared'"
        )


def publish(root: Path, remote: str, run_id: str) -> tuple[str, str]:
    """Push HEAD to refs/medpipe/handoff/<run> on `remote`; returns (ref, commit)."""
    sha = git(root, "rev-parse", "HEAD")
    ref = HANDOFF_REF.format(run=run_id)
    git(root, "push", "-q", remote, f"{sha}:{ref}")
    return ref, sha


def remote_url(root: Path, remote: str) -> str:
    return git(root, "remote", "get-url", remote)


def checkout(workdir: Path, url: str, ref: str, sha: str) -> None:
    """The GPU host's checkout at exactly `sha` (fetched from `ref` of `url`); created when missing."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / ".git").exists():
        git(workdir, "init", "-q")
    git(workdir, "fetch", "-q", url, f"+{ref}:{ref}")
    got = git(workdir, "rev-parse", ref)
    if got != sha:
        raise HandoffFailed(f"{ref} at {url} is {got[:12]}, not the handed-off {sha[:12]}")
    git(workdir, "checkout", "-q", "-f", "--detach", sha)


def send_back(workdir: Path, url: str, run_id: str) -> tuple[str, str]:
    """Push the GPU checkout's HEAD (the trained commit) to refs/medpipe/trained/<run>."""
    ref = TRAINED_REF.format(run=run_id)
    sha = git(workdir, "rev-parse", "HEAD")
    git(workdir, "push", "-q", "-f", url, f"HEAD:{ref}")
    return ref, sha


def take_trained(root: Path, remote: str, run_id: str, base: str) -> tuple[str, list[str]]:
    """Fetch the trained commit, check it sits on `base`, apply its files and move HEAD to it."""
    ref = TRAINED_REF.format(run=run_id)
    git(root, "fetch", "-q", remote, f"+{ref}:{ref}")
    trained = git(root, "rev-parse", ref)
    if trained != base and git(root, "rev-parse", f"{trained}^") != base:
        raise HandoffFailed(f"{ref} ({trained[:12]}) is not one commit on top of {base[:12]}")
    head = git(root, "rev-parse", "HEAD")
    if head != base:
        raise HandoffFailed(
            f"HEAD of {root} moved during training ({base[:12]} -> {head[:12]}); "
            f"take the model with `git cherry-pick {trained[:12]} && dvc pull train`"
        )
    files = git(root, "diff", "--name-only", base, trained).splitlines()
    if files:
        git(root, "checkout", trained, "--", *files)
        git(root, "reset", "-q", "--soft", trained)
    return trained, files


def restore_empty_dirs(root: Path, stage: str = TRAIN) -> list[str]:
    """Create the stage's outs that dvc.lock records as empty directories (a finished checkpoints/)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    made = []
    for out in (lock.get("stages") or {}).get(stage, {}).get("outs") or []:
        path = root / out["path"]
        if str(out.get("md5", "")).endswith(".dir") and out.get("nfiles") == 0 and not path.exists():
            path.mkdir(parents=True)
            made.append(out["path"])
    return made
