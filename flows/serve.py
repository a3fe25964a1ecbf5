"""Single-machine scheduling without workers or work pools: `flow.serve` polls the server itself.

    uv run prefect server start &                       # or PREFECT_API_URL of an existing server
    uv run python -m flows.serve --project-dir "$PWD"   # long-running; Ctrl-C stops it

Serves `nightly-retrain-served` on the cron schedule (default 02:00 in --timezone) and
`train-gpu-served` (run on demand by `nightly_retrain(gpu_pool=True)`, shared-directory hand-off:
both run on this machine) from one process. The `-served` names keep them apart from the
`prefect deploy` deployments of prefect.yaml: serving never overwrites those (whose next run
would then crash looking for flow code), and stopping serve pauses only its own schedule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.schedules import Cron

from flows.nightly_retrain import nightly_retrain
from flows.train_gpu import train_stage

NIGHTLY_CRON = "0 2 * * *"
SUFFIX = "-served"
NIGHTLY_NAME = "nightly-retrain" + SUFFIX
GPU_NAME = "train-gpu" + SUFFIX


def build_deployments(project_dir: str, cron: str = NIGHTLY_CRON, timezone: str = "UTC") -> list:
    """The two runner deployments, with project_dir baked into their default parameters."""
    root = str(Path(project_dir).resolve())
    nightly = nightly_retrain.to_deployment(
        name=NIGHTLY_NAME,
        schedule=Cron(cron, timezone=timezone),
        parameters={
            "project_dir": root,
            "gpu_deployment": f"{train_stage.name}/{GPU_NAME}",
            "gpu_handoff": "shared",  # served: the child runs in this process's machine
        },
        concurrency_limit=1,
        tags=["medpipe"],
    )
    gpu = train_stage.to_deployment(name=GPU_NAME, parameters={"project_dir": root}, tags=["medpipe", "gpu"])
    return [nightly, gpu]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the medpipe flows from this process.")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--cron", default=NIGHTLY_CRON)
    parser.add_argument("--timezone", default="UTC", help="IANA name, e.g. Europe/Berlin")
    args = parser.parse_args(argv)
    serve(*build_deployments(args.project_dir, args.cron, args.timezone))


if __name__ == "__main__":
    main()
