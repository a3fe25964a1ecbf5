"""Every benchmark run (benchmarks/out/*_runs.jsonl) as one markdown table per benchmark.

    uv run python benchmarks/runs_table.py > benchmarks/results/runs.md

Columns: tag, dataset / preset, seed, val figures, test figures (blank when not scored), epochs
run / best epoch, train seconds, load average before the run, and the params that differ
between runs of the same benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def _fmt(block: dict | None) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in (block or {}).items() if isinstance(v, float | int))


def table(path: Path) -> str:
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not runs:
        return ""
    flats = [_flat(r.get("params", {})) for r in runs]
    keys = sorted({k for f in flats for k in f} - {"data.source", "train.seed"})
    with_params = [f for f in flats if f]  # test-scoring records carry no params
    varying = [k for k in keys if len({json.dumps(f.get(k)) for f in with_params}) > 1]
    lines = [
        f"## {path.stem}",
        "",
        "| tag | data | seed | val | test | epochs (best) | train s | load | params that vary |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r, f in zip(runs, flats, strict=True):
        secs = r.get("train_seconds") or r.get("stage_seconds", {}).get("train")
        params = ", ".join(f"{k}={f[k]}" for k in varying if k in f)
        lines.append(
            f"| {r.get('tag', '')} | {r.get('dataset') or r.get('preset')} | {r.get('seed', '')} | {_fmt(r.get('val'))} "
            f"| {_fmt(r.get('test'))} | {r.get('epochs_run')} ({r.get('best_epoch')}) | {secs} "
            f"| {(r.get('loadavg_before') or [''])[0]} | {params} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    for path in sorted(OUT.glob("*_runs.jsonl")):
        print(table(path))


if __name__ == "__main__":
    main()
