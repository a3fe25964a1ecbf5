"""`medpipe` command line: thin wrappers around the stages and the audit tools.

    medpipe stage <name> -i key=path ... -o key=path ... [--params params.yaml]
    medpipe lineage model <name>@<alias|version>
    medpipe lineage data <sha256|path|dvc-hash>
    medpipe registry history <name>
    medpipe reproduce <name>@<version>
    medpipe preset list | apply NAME [--params params.yaml]
    medpipe changes [--since NAME@ALIAS|VERSION] [--json] [--write]
    medpipe predict <name>@<alias|version> | <model URI> | models/  <image|dir>... [--json|--csv]
    medpipe --version

Paths of stage inputs and outputs are declared once, in dvc.yaml, and passed here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.cli import quiet
from pipeline.cli.parser import build_parser
from pipeline.cli.stage_runner import run_stage
from pipeline.core.errors import MedpipeError
from pipeline.core.redact import install_log_filter, redact

log = logging.getLogger("medpipe")


def _pairs(items: list[str] | None, flag: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise MedpipeError(f"{flag} expects key=path, got {item!r}")
        out[key] = Path(value)
    return out


def _cmd_stage(args: argparse.Namespace) -> int:
    run_stage(args.name, Path(args.params), _pairs(args.inputs, "-i"), _pairs(args.outputs, "-o"))
    return 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from pipeline.registry import lineage

    if args.kind == "model":
        lineage.print_model(args.ref, as_json=args.json)
    else:
        lineage.print_data(args.ref, as_json=args.json)
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from pipeline.registry import lineage

    lineage.print_history(args.name, as_json=args.json)
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from pipeline.registry import reproduce

    return reproduce.main(args.ref, tolerance=args.tolerance)


def _cmd_preset(args: argparse.Namespace) -> int:
    from pipeline.config import presets

    if args.action == "list":
        shown = presets.available()
        width = max(map(len, shown), default=0)
        for name, line in shown.items():
            sys.stdout.write(f"{name:{width}s}  {line}\n")
        return 0
    if not args.name:
        raise MedpipeError("medpipe preset apply needs a preset NAME; see: medpipe preset list")
    changes = presets.apply(args.name, Path(args.params))
    log.info("preset %s applied to %s: %d key(s) changed", args.name, args.params, len(changes))
    for change in changes:
        sys.stdout.write(f"  {change}\n")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from pipeline.cli import predict

    return predict.main(args)


def _cmd_changes(args: argparse.Namespace) -> int:
    from pipeline.cli import changes

    return changes.main(args)


COMMANDS = {
    "stage": _cmd_stage,
    "lineage": _cmd_lineage,
    "registry": _cmd_registry,
    "reproduce": _cmd_reproduce,
    "preset": _cmd_preset,
    "predict": _cmd_predict,
    "changes": _cmd_changes,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    install_log_filter()
    for noisy in ("great_expectations", "mlflow", "alembic", "absl", "h5py", "urllib3", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        quiet.configure(args.name if args.command == "stage" else None)
        return COMMANDS[args.command](args)
    except MedpipeError as exc:
        sys.stderr.write(f"medpipe: error: {redact(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("medpipe: interrupted\n")
        return 130
