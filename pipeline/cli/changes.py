"""`medpipe changes [--since NAME@ALIAS|VERSION] [--json] [--write]`: what changed since the
champion (or the named version), computed as the changes stage computes it, from the current files.

The input and output paths are the changes stage's in dvc.yaml (its `-i` / `-o` pairs), so the
graph stays declared in one place. Without --write nothing is written; --json prints the
changes.json document, else a few lines (status, counts, flags). Exit 0 for every status.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from pipeline import config
from pipeline.changes import summary
from pipeline.changes.compute import Inputs, compute, dumps, write
from pipeline.core import dvc_files
from pipeline.core.errors import MedpipeError

STAGE = "changes"


def stage_paths(dvc_yaml: Path = Path("dvc.yaml")) -> tuple[dict[str, Path], dict[str, Path]]:
    """(inputs, outputs) of the changes stage's command in dvc.yaml."""
    entry = dvc_files.stages(dvc_yaml).get(STAGE) if dvc_yaml.is_file() else None
    if not entry:
        raise MedpipeError(f"{dvc_yaml} declares no '{STAGE}' stage; run from the project root")
    words = shlex.split(str(entry["cmd"]))
    pairs: dict[str, dict[str, Path]] = {"-i": {}, "-o": {}}
    for flag, item in zip(words, words[1:], strict=False):
        if flag in pairs:
            key, _, value = item.partition("=")
            pairs[flag][key] = Path(value)
    return pairs["-i"], pairs["-o"]


def text(doc: dict) -> str:
    """The short human summary."""
    lines = [f"status: {doc['status']} ({doc['reason']})"]
    if doc.get("champion"):
        lines.append(f"champion: {doc['champion']['name']} v{doc['champion']['version']}")
    lines.append(", ".join(f"{k} {doc[k]}" for k in summary.COUNTS) + f"; new images {doc['new_images']}")
    lines += [f"relabelled: {r['n']} from {r['from']} to {r['to']}" for r in doc["relabels"]]
    lines += [f"vanished class: {c}" for c in doc["vanished_classes"]]
    lines += [f"flag: {line}" for line in summary.flags(doc)]
    scored = doc.get("champion_on_new")
    if scored:
        shown = ", ".join(
            f"{k} {v['value']:.3f}" for k, v in scored["metrics"].items() if v["value"] is not None
        )
        lines.append(f"champion on {scored['n']} new images: {shown}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    cfg = config.load(Path(args.params))
    inputs, outputs = stage_paths()
    paths = Inputs(
        validated=inputs["validated"],
        splits=inputs["splits"],
        preprocessed=inputs.get("preprocessed"),
        labels=inputs.get("labels"),
    )
    result = compute(cfg, paths, since=args.since)
    if args.write:
        write(result, cfg, outputs)
    sys.stdout.write((dumps(result.doc) if args.json else text(result.doc)) + "\n")
    return 0
