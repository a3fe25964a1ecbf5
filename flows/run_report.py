"""What a nightly run tells people: the final-state message and the Prefect artifacts.

Artifacts (keys are stable so the UI shows their history run after run):
  nightly-report  markdown: decision, metrics against the champion, gate details, the gate's
                      comparison on new data since the champion, report path
  nightly-metrics table: one row per headline metric (challenger, champion, change)
  nightly-report-link link: reports/report.html as logged in the version's MLflow run, over
                      http(s) when the tracking URI is a server (the MLflow UI's artifact page);
                      the file:// URI of the local file with a local store (sqlite/file)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from flows.changes_report import new_data_lines
from pipeline.core.redact import redact

MARKDOWN_KEY = "nightly-report"
TABLE_KEY = "nightly-metrics"
LINK_KEY = "nightly-report-link"
REPORT = "reports/report.html"
log = logging.getLogger(__name__)


def tracking_uri(project_dir: str) -> str:
    """MLFLOW_TRACKING_URI, else registry.tracking_uri of the project's params.yaml."""
    from pipeline.config import load

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    try:
        return load(Path(project_dir) / "params.yaml").registry.tracking_uri
    except Exception:  # an unreadable params.yaml: the register stage already said so
        return ""


def mlflow_report_url(uri: str, run_id: str, name: str = "report.html") -> str | None:
    """The MLflow UI page of the run's report artifact (http(s) tracking servers only), else None."""
    if not uri.startswith(("http://", "https://")) or not run_id:
        return None
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        found = [a.path for a in client.list_artifacts(run_id) if a.path.endswith(name)]
        for folder in (a.path for a in client.list_artifacts(run_id) if a.is_dir):
            found += [a.path for a in client.list_artifacts(run_id, folder) if a.path.endswith(name)]
    except Exception as exc:  # the server is down: no link rather than a failed run
        log.warning(
            "no MLflow link for run %s at %s: %s", run_id, redact(uri), redact(str(exc).splitlines()[0])
        )
        return None
    base = f"{uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
    return f"{base}/artifactPath/{found[0]}" if found else base


def report_link(project_dir: str, record: dict) -> str | None:
    """Where the report can be opened: the MLflow artifact over http, else the local file.

    URL user info (MLFLOW_TRACKING_URI=https://user:pass@host) is redacted: the link is stored by Prefect.
    """
    url = mlflow_report_url(tracking_uri(project_dir), str(record.get("run_id") or ""))
    report = (Path(project_dir) / REPORT).resolve()
    return redact(url) if url else (report.as_uri() if report.is_file() else None)


def decision(outcome: dict) -> tuple[bool, str]:
    """(promoted, one-line message) from the register task's outcome {ran, record}."""
    record = outcome["record"]
    gate = record.get("gate") or {}
    version = record.get("version", "?")
    if not outcome["ran"]:
        return (
            False,
            f"no change: data, params and code are up to date; nothing new registered (latest v{version})",
        )
    reason = gate.get("reason") or "the gate recorded no reason"
    if gate.get("promote"):
        return True, f"challenger v{version} promoted to champion: {reason}"
    return False, f"challenger v{version} not promoted: {reason}"


def headline_metrics(metrics: dict) -> dict[str, float]:
    """The flat numeric metrics of reports/metrics.json (nested CIs and per-class blocks left out)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _champion_value(gate: dict, metric: str, value: float) -> float | None:
    champion = gate.get("champion_metrics") or gate.get("champion")
    if isinstance(champion, dict) and isinstance(champion.get(metric), int | float):
        return float(champion[metric])
    deltas = gate.get("deltas")
    if isinstance(deltas, dict) and isinstance(deltas.get(metric), int | float):
        return value - float(deltas[metric])
    return None


def metric_rows(metrics: dict, gate: dict) -> list[dict]:
    """Rows for the table artifact: metric, challenger, champion (when known), change."""
    rows = []
    for metric, value in headline_metrics(metrics).items():
        champ = _champion_value(gate, metric, value)
        change = None if champ is None else round(value - champ, 4)
        rows.append({"metric": metric, "challenger": round(value, 4), "champion": champ, "change": change})
    return rows


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def markdown(
    message: str, record: dict, rows: list[dict], report: Path, stages_run: list[str], link: str | None
) -> str:
    """The run summary shown in the Prefect UI."""
    gate = record.get("gate") or {}
    lines = [
        f"# Nightly retrain: {record.get('model_name', '?')} v{record.get('version', '?')}",
        "",
        f"**Decision:** {message}",
        "",
        "| metric | challenger | champion | change |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {_fmt(r['challenger'])} | {_fmt(r['champion'])} | {_fmt(r['change'], True)} |"
        for r in rows
    ]
    skip = ("reason", "deltas", "champion", "champion_metrics", "new_data")
    details = {k: v for k, v in gate.items() if k not in skip}
    if details:
        lines += ["", "**Gate:** " + ", ".join(f"{k}={v}" for k, v in details.items())]
    lines += new_data_lines(gate.get("new_data"))
    lines += [
        "",
        f"**Stages rerun:** {', '.join(stages_run) or 'none (all up to date)'}",
        "",
        f"**MLflow run:** `{record.get('run_id', '?')}`, aliases: {', '.join(record.get('aliases') or []) or 'none'}",
        "",
        f"**Report:** [{report}]({link})" if link else f"**Report:** {report} (missing)",
    ]
    return "\n".join(lines)


@task(name="publish-artifacts", timeout_seconds=120)
def publish_artifacts(project_dir: str, outcome: dict, metrics: dict, message: str) -> list[str]:
    """Create the markdown, table and link artifacts of this run; returns their keys."""
    record = outcome["record"]
    rows = metric_rows(metrics, record.get("gate") or {})
    report = (Path(project_dir) / REPORT).resolve()
    link = report_link(project_dir, record)
    create_markdown_artifact(
        key=MARKDOWN_KEY,
        markdown=markdown(message, record, rows, report, outcome.get("stages_run", []), link),
        description=message,
    )
    create_table_artifact(key=TABLE_KEY, table=rows, description="headline test metrics of the challenger")
    keys = [MARKDOWN_KEY, TABLE_KEY]
    if link:
        create_link_artifact(key=LINK_KEY, link=link, link_text=REPORT, description="evaluation report")
        keys.append(LINK_KEY)
    return keys
