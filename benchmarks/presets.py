"""Every preset end to end, as a new user runs it (not a test): a fresh `git clone` of this branch,
`medpipe preset apply NAME`, only `data.source` set, `dvc repro` offline on the CPU.

    uv run python benchmarks/presets.py [--only tb breakhis-densenet201] [--work /tmp/medpipe-presets]

Per preset: rc, wall seconds of `dvc repro`, the registered model name and version, whether it
became champion, the headline metrics (reports/headline.json), or the one line that stopped the
run. The clone is of the committed HEAD (commit first); each gets its own .venv (`uv sync
--frozen`, from the uv cache) and its own MLflow store, so runs never see each other's champion.
Writes benchmarks/results/presets.json and prints a table. Runs one preset at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared"
RESULTS = HERE / "results" / "presets.json"
SOURCES = {  # quick stops first, the minutes-long Kermany trainings last
    "tb": str(SHARED / "samples" / "tb"),
    "breakhis-densenet201": str(SHARED / "samples" / "breakhis"),
    "idc": "sample",
    "kermany-binary": str(SHARED / "datasets" / "kermany-dev"),
    "kermany-3class": str(SHARED / "datasets" / "kermany-dev"),
}
HEADLINE = ("roc_auc", "balanced_accuracy", "sensitivity", "specificity", "threshold", "n_test")
# offline on the CPU: no GPU, no telemetry, the clone's own MLflow store
OFFLINE = {"CUDA_VISIBLE_DEVICES": "", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "UV_OFFLINE": "1"}
log = logging.getLogger("benchmarks.presets")


def set_source(params: Path, source: str) -> None:
    """Rewrite the value of data.source only (comments and every other key stay as they are)."""
    text = params.read_text()
    new, n = re.subn(r"(?m)^(data:\n(?:[ \t]*#.*\n)*  source:)[ \t]*[^#\n]*?([ \t]*#.*)?$",
                     lambda m: f"{m.group(1)} {source}{m.group(2) or ''}", text, count=1)  # fmt: skip
    if n != 1:
        raise SystemExit(f"{params}: no data.source line found under data:")
    params.write_text(new)


def stop_line(output: str) -> str | None:
    """The line a failed run stopped with: the stage's own `medpipe: error:` line, else DVC's last
    ERROR line."""
    lines = [ln.strip() for ln in output.splitlines()]
    own = [ln for ln in lines if ln.startswith("medpipe: error:")]
    errors = own or [ln for ln in lines if "ERROR" in ln or "Error:" in ln]
    return errors[-1][:400] if errors else None


def sh(args: list[str], cwd: Path, env: dict, log_file: Path) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    out = done.stdout + done.stderr
    with log_file.open("a") as fh:
        fh.write(f"$ {' '.join(args)}\n{out}\n")
    return done.returncode, round(time.perf_counter() - t0, 1), out


def run_preset(name: str, work: Path) -> dict:
    proj = work / name
    shutil.rmtree(proj, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(proj)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=proj, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))}
    env.update(OFFLINE)
    log_file = work / f"{name}.log"
    log_file.unlink(missing_ok=True)
    uv = ["uv", "run", "--frozen"]
    row: dict = {"preset": name, "commit": commit, "data.source": SOURCES[name]}
    rc, _, out = sh(["uv", "sync", "--frozen"], proj, env, log_file)
    if rc == 0:
        rc, _, out = sh([*uv, "medpipe", "preset", "apply", name], proj, env, log_file)
    if rc != 0:
        return row | {"rc": rc, "stopped": stop_line(out) or out.strip()[-300:]}
    set_source(proj / "params.yaml", SOURCES[name])
    load = os.getloadavg()[0]
    rc, wall, out = sh([*uv, "dvc", "repro"], proj, env, log_file)
    row |= {"rc": rc, "wall_s": wall, "load_1min_at_start": round(load, 2)}
    record_path = proj / "reports" / "registered.json"
    if rc == 0 and record_path.is_file():
        record = json.loads(record_path.read_text())
        headline = json.loads((proj / "reports" / "headline.json").read_text())
        row |= {
            "model_name": record["model_name"],
            "version": record["version"],
            "champion": "champion" in record.get("aliases", []),
            "gate": record.get("gate", {}).get("reason"),
            "headline": {k: headline.get(k) for k in HEADLINE if k in headline},
        }
    else:
        row["stopped"] = stop_line(out)
    return row


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def table(rows: list[dict]) -> str:
    head = ["preset", "rc", "wall_s", "model", "champion", *HEADLINE[:4], "stopped"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        h = r.get("headline", {})
        model = f"{r['model_name']} v{r['version']}" if "model_name" in r else "-"
        cells = [
            r["preset"],
            r["rc"],
            r.get("wall_s"),
            model,
            r.get("champion"),
            *(h.get(k) for k in HEADLINE[:4]),
        ]
        lines.append(" | ".join([*(fmt(c) for c in cells), (r.get("stopped") or "")[:160]]))
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(SOURCES), help="presets to run (default: all)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/medpipe-presets"), help="where the clones go")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    old = {r["preset"]: r for r in json.loads(RESULTS.read_text())["runs"]} if RESULTS.is_file() else {}
    for name in args.only or list(SOURCES):
        log.info("preset %s: clone, apply, data.source=%s, dvc repro", name, SOURCES[name])
        old[name] = run_preset(name, args.work)
        log.info("preset %s: rc %s in %ss", name, old[name]["rc"], old[name].get("wall_s"))
        rows = [old[n] for n in SOURCES if n in old]
        RESULTS.write_text(json.dumps({"cpu_count": os.cpu_count(), "runs": rows}, indent=2) + "\n")
    sys.stdout.write(table([old[n] for n in SOURCES if n in old]) + "\n")


if __name__ == "__main__":
    main()
