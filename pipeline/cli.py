"""`medpipe` command line: thin wrappers around the stages and the audit tools.

    medpipe stage <name> -i key=path ... -o key=path ... [--params params.yaml]
    medpipe lineage model <name>@<alias|version>
    medpipe lineage data <sha256|path|dvc-hash>
    medpipe registry history <name>
    medpipe reproduce <name>@<version>
    medpipe preset list | apply NAME [--params params.yaml]

Paths of stage inputs and outputs are declared once, in dvc.yaml, and passed here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
from pathlib import Path

from pipeline import config
from pipeline.errors import MedpipeError
from pipeline.redact import install_log_filter, redact

STAGES = ("ingest", "regroup", "validate", "split", "balance", "train", "evaluate", "register")
log = logging.getLogger("medpipe")


def _pairs(items: list[str] | None, flag: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise MedpipeError(f"{flag} expects key=path, got {item!r}")
        out[key] = Path(value)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def run_stage(name: str, params: Path, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Load params, run one stage; on failure remove the outputs this run created."""
    if name not in STAGES:
        raise MedpipeError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}")
    cfg = config.load(params)
    module = importlib.import_module(f"pipeline.stages.{name}")
    existed = {key for key, path in outputs.items() if path.exists()}
    try:
        return module.run(cfg, inputs, outputs) or {}
    except Exception:
        # A failure leaves nothing half-written. An interrupt (Ctrl-C, SIGTERM via KeyboardInterrupt)
        # is not a failure: dvc.lock is not updated, DVC clears non-persist outputs before the next
        # run, and persist outputs (train checkpoints) are what lets that run resume.
        for key, path in outputs.items():
            if key not in existed:
                _remove(path)
        raise


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
    from pipeline import presets

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medpipe", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    stage = sub.add_parser("stage", help="run one pipeline stage (what dvc.yaml calls)")
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("-i", dest="inputs", action="append", metavar="KEY=PATH")
    stage.add_argument("-o", dest="outputs", action="append", metavar="KEY=PATH")
    stage.add_argument("--params", default="params.yaml")
    stage.set_defaults(func=_cmd_stage)

    lin = sub.add_parser("lineage", help="which data produced a model / which models used some data")
    lin.add_argument("kind", choices=("model", "data"))
    lin.add_argument("ref", help="model: <name>@<alias|version>; data: sha256, path or DVC md5")
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(func=_cmd_lineage)

    reg = sub.add_parser("registry", help="registry queries")
    reg_sub = reg.add_subparsers(dest="what", required=True)
    hist = reg_sub.add_parser("history", help="alias changes of a registered model")
    hist.add_argument("name")
    hist.add_argument("--json", action="store_true")
    hist.set_defaults(func=_cmd_registry)

    rep = sub.add_parser("reproduce", help="rebuild a registered version and compare metrics")
    rep.add_argument("ref", help="<name>@<version|alias>")
    rep.add_argument("--tolerance", type=float, default=0.02)
    rep.set_defaults(func=_cmd_reproduce)

    pre = sub.add_parser("preset", help="list the per-source-system presets or apply one to params.yaml")
    pre.add_argument("action", choices=("list", "apply"))
    pre.add_argument("name", nargs="?", help="preset name (apply)")
    pre.add_argument("--params", default="params.yaml")
    pre.set_defaults(func=_cmd_preset)
    return parser


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
        return args.func(args)
    except MedpipeError as exc:
        sys.stderr.write(f"medpipe: error: {redact(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("medpipe: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
