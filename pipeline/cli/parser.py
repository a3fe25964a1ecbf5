"""The `medpipe` argument parser: every subcommand with its summary, description and examples.

pipeline.cli runs the command a parse names (`args.command`); this module only declares them.
"""

from __future__ import annotations

import argparse
import importlib.metadata

from pipeline.cli.stage_runner import STAGES

DESCRIPTION = "`medpipe` command line: thin wrappers around the stages and the audit tools."


def version() -> str:
    """The installed medpipe version ("unknown" when run from a source tree that is not installed)."""
    try:
        return importlib.metadata.version("medpipe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def add_command(
    sub, name: str, summary: str, description: str, examples: list[str]
) -> argparse.ArgumentParser:
    """A subcommand with a one-line summary (in the parent's list), a description and examples.

    Every subcommand is added through here so that `medpipe <cmd> --help` says what it does and
    shows how to call it (a unit test checks all of them).
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
        description=DESCRIPTION,
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

    chg = add_command(
        sub,
        "changes",
        "what changed since the champion: data diff, drift, the champion on new images",
        "Compare the current manifests (the last dvc repro up to preprocess) with the champion's recorded "
        "ones: images added / removed / changed / relabelled per class, split and patient, image-property "
        "and embedding drift with flags, and the champion scored on the new labelled images. The same "
        "computation as the changes stage; nothing is written unless --write (docs/changes.md).",
        [
            "medpipe changes",
            "medpipe changes --json",
            "medpipe changes --since medpipe-idc@3 --json",
        ],
    )
    chg.add_argument(
        "--since", metavar="NAME@ALIAS|VERSION", help="compare with this version (default: the champion)"
    )
    chg.add_argument("--json", action="store_true", help="print the changes.json summary")
    chg.add_argument("--write", action="store_true", help="also write the stage's outputs (reports/changes*)")
    chg.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser
