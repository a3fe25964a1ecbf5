"""`medpipe` command line: thin wrappers around the stages and the audit tools.

    medpipe stage <name> -i key=path ... -o key=path ... [--params params.yaml]
    medpipe lineage model <name>@<alias|version>
    medpipe lineage data <sha256|path|dvc-hash>
    medpipe registry history <name>
    medpipe reproduce <name>@<version>
    medpipe preset list | apply NAME [--params params.yaml]
    medpipe predict <name>@<alias|version> | <model URI> | models/  <image|dir>... [--json|--csv]
    medpipe --version

Paths of stage inputs and outputs are declared once, in dvc.yaml, and passed here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import shutil
import sys
from pathlib import Path

import yaml

from pipeline import config, dvc_files
from pipeline.errors import MedpipeError
from pipeline.redact import install_log_filter, redact

STAGES = ("ingest", "regroup", "validate", "split", "balance", "preprocess", "train", "evaluate", "register")
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


_MISSING = "<not set>"


def stage_param_keys(name: str, dvc_yaml: Path = Path("dvc.yaml")) -> list[str] | None:
    """The params.yaml keys dvc.yaml lists for a stage (what dvc.lock records), None if unknown."""
    entry = dvc_files.stages(dvc_yaml).get(name) if dvc_yaml.is_file() else None
    if not entry:
        return None
    return [p for p in entry.get("params", []) if isinstance(p, str)]


def params_snapshot(path: Path, keys: list[str] | None) -> dict:
    """{key: value} of params.yaml as written (the whole file when keys is None)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return {"<params.yaml>": f"unreadable ({type(exc).__name__})"}
    if keys is None:
        return {"<params.yaml>": raw}
    out = {}
    for key in keys:
        node = raw
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        out[key] = node
    return out


def check_params_unchanged(name: str, path: Path, keys: list[str] | None, before: dict) -> None:
    """MedpipeError when the stage's params in params.yaml changed while it ran: its outputs were
    made with the old values, but dvc.lock would record the new ones."""
    after = params_snapshot(path, keys)
    changed = [k for k in before if before[k] != after.get(k)]
    if changed:
        shown = "; ".join(f"{k}: {before[k]!r} -> {after.get(k)!r}"[:160] for k in changed[:3])
        raise MedpipeError(
            f"{path} changed while stage {name} ran ({shown}); its outputs were made with the old values, "
            "so the stage fails and dvc.lock keeps its previous record: run dvc repro again"
        )


def run_stage(name: str, params: Path, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Load params, run one stage, check params.yaml did not change under it; on failure remove the
    outputs this run created."""
    if name not in STAGES:
        raise MedpipeError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}")
    keys = stage_param_keys(name)
    before = params_snapshot(params, keys)
    cfg = config.load(params)
    if keys is not None:
        log.info("stage %s runs with %s", name, {k: v for k, v in before.items()})
    module = importlib.import_module(f"pipeline.stages.{name}")
    existed = {key for key, path in outputs.items() if path.exists()}
    try:
        result = module.run(cfg, inputs, outputs) or {}
        check_params_unchanged(name, params, keys, before)
        return result
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


def version() -> str:
    """The installed medpipe version ("unknown" when run from a source tree that is not installed)."""
    try:
        return importlib.metadata.version("medpipe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cmd_predict(args: argparse.Namespace) -> int:
    from pipeline import predict

    return predict.main(args)


def add_command(
    sub, name: str, summary: str, description: str, examples: list[str]
) -> argparse.ArgumentParser:
    """A subcommand with a one-line summary (in the parent's list), a description and examples.

    Every subcommand is added through here so that `medpipe <cmd> --help` says what it does and
    shows how to call it (tests/test_cli.py checks all of them).
    """
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medpipe",
        description=__doc__.splitlines()[0],
        epilog="examples:\n  uv run dvc repro          # the whole pipeline (calls medpipe stage ...)\n"
        "  medpipe lineage model medpipe-idc@champion\n  medpipe <command> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"medpipe {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    stage = add_command(
        sub,
        "stage",
        "run one pipeline stage (what dvc.yaml calls)",
        "Run one stage with the inputs and outputs dvc.yaml declares. Normally DVC calls this; run it "
        "by hand to debug a stage. A failing stage removes the outputs it created.",
        [
            "medpipe stage split -i validated=data/interim/validated.csv -o splits=data/splits "
            "-o report=reports/split.json",
            "uv run dvc repro split   # the same, with the paths from dvc.yaml",
        ],
    )
    stage.add_argument("name", choices=STAGES, help="stage name: " + ", ".join(STAGES))
    stage.add_argument("-i", dest="inputs", action="append", metavar="KEY=PATH", help="an input (repeat)")
    stage.add_argument("-o", dest="outputs", action="append", metavar="KEY=PATH", help="an output (repeat)")
    stage.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    stage.set_defaults(func=_cmd_stage)

    lin = add_command(
        sub,
        "lineage",
        "which data produced a model / which models used some data",
        "Audit trail both ways: for a registered model, its git revision, params, DVC hashes and "
        "split manifests; for an image (sha256 or path) or a DVC hash, every registered version "
        "whose train/val/test data contained it.",
        [
            "medpipe lineage model medpipe-idc@champion",
            "medpipe lineage model medpipe-idc@3 --json",
            "medpipe lineage data data/raw/10253/1/10253_idx5_x501_y351_class1.png",
        ],
    )
    lin.add_argument("kind", choices=("model", "data"))
    lin.add_argument("ref", help="model: <name>@<alias|version>; data: sha256, path or DVC md5")
    lin.add_argument("--json", action="store_true", help="machine-readable output")
    lin.set_defaults(func=_cmd_lineage)

    reg = add_command(
        sub,
        "registry",
        "registry queries",
        "Queries against the MLflow model registry (tracking URI from params.yaml registry.tracking_uri "
        "or MLFLOW_TRACKING_URI).",
        ["medpipe registry history medpipe-idc"],
    )
    reg_sub = reg.add_subparsers(dest="what", required=True, metavar="<query>")
    hist = add_command(
        reg_sub,
        "history",
        "alias changes of a registered model",
        "Every version of a registered model with its gate decision, and every move of the "
        "champion/challenger aliases, oldest first.",
        ["medpipe registry history medpipe-idc", "medpipe registry history medpipe-idc --json"],
    )
    hist.add_argument("name", help="registered model name (params.yaml registry.model_name)")
    hist.add_argument("--json", action="store_true", help="machine-readable output")
    hist.set_defaults(func=_cmd_registry)

    rep = add_command(
        sub,
        "reproduce",
        "rebuild a registered version and compare metrics",
        "Check out the version's git revision in a temporary worktree (sharing the DVC cache), "
        "restore its raw data, rerun every stage up to evaluate and compare each registered metric "
        "with the rebuilt one. Exit 0 when all are within --tolerance, 1 otherwise. Takes as long "
        "as a training run; progress is logged stage by stage.",
        ["medpipe reproduce medpipe-idc@champion", "medpipe reproduce medpipe-idc@3 --tolerance 0.005"],
    )
    rep.add_argument("ref", help="<name>@<version|alias>")
    rep.add_argument(
        "--tolerance", type=float, default=0.02, help="absolute tolerance per metric (default 0.02)"
    )
    rep.set_defaults(func=_cmd_reproduce)

    pre = add_command(
        sub,
        "preset",
        "list the per-source-system presets or apply one to params.yaml",
        "Presets (presets/*.yaml) hold the settings that suit one source system (image size, "
        "channels, augmentation, model, thresholds). `apply` rewrites only those keys in params.yaml, "
        "keeping its comments, and prints what changed; `dvc repro` then reruns what depends on them.",
        [
            "medpipe preset list",
            "medpipe preset apply kermany-binary",
            "medpipe preset apply idc --params params.yaml",
        ],
    )
    pre.add_argument("action", choices=("list", "apply"))
    pre.add_argument("name", nargs="?", help="preset name (apply)")
    pre.add_argument("--params", default="params.yaml", help="params file to rewrite (default: params.yaml)")
    pre.set_defaults(func=_cmd_preset)

    pred = add_command(
        sub,
        "predict",
        "score image files with a registered or local model",
        "Class probabilities (p_<class>) and the label at the val-chosen threshold for each image, "
        "with the model's own preprocessing (size, channels, intensity window) and TTA setting.",
        [
            "medpipe predict medpipe-idc@champion new_patches/ --csv > scores.csv",
            "medpipe predict models/ img1.png img2.png --json",
            "medpipe predict models:/medpipe-idc/3 data/raw/10253 --heatmap heatmaps/",
        ],
    )
    pred.add_argument("model", help="<name>@<alias|version>, an MLflow model URI, or a models/ directory")
    pred.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="image files or directories (recursive)")
    fmt = pred.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON records instead of a table")
    fmt.add_argument("--csv", action="store_true", help="CSV instead of a table")
    pred.add_argument("--batch-size", type=int, default=64)
    pred.add_argument("--threshold", type=float, help="override the recorded operating threshold")
    pred.add_argument(
        "--metrics", default="reports/metrics.json", help="threshold source for a models/ directory"
    )
    pred.add_argument("--heatmap", metavar="DIR", help="IDC: write one slide heat map per patient here")
    pred.set_defaults(func=_cmd_predict)
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
