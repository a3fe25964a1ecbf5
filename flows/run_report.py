"""What a nightly run tells people: the final-state message and the Prefect artifacts.

Artifacts (keys are stable so the UI shows their history run after run):
  nightly-report  markdown: decision, metrics against the champion, gate details, report path
  nightly-metrics table: one row per headline metric (challenger, champion, change)
  nightly-report-link link: file:// URI of reports/report.html
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

MARKDOWN_KEY = "nightly-report"
TABLE_KEY = "nightly-metrics"
LINK_KEY = "nightly-report-link"
REPORT = "reports/report.html"


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


def markdown(message: str, record: dict, rows: list[dict], report: Path, stages_run: list[str]) -> str:
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
    details = {k: v for k, v in gate.items() if k not in ("reason", "deltas", "champion", "champion_metrics")}
    if details:
        lines += ["", "**Gate:** " + ", ".join(f"{k}={v}" for k, v in details.items())]
    lines += [
        "",
        f"**Stages rerun:** {', '.join(stages_run) or 'none (all up to date)'}",
        "",
        f"**MLflow run:** `{record.get('run_id', '?')}`, aliases: {', '.join(record.get('aliases') or []) or 'none'}",
        "",
        f"**Report:** [{report}]({report.as_uri()})"
        if report.is_file()
        else f"**Report:** {report} (missing)",
    ]
    return "\n".join(lines)


@task(name="publish-artifacts", timeout_seconds=120)
def publish_artifacts(project_dir: str, outcome: dict, metrics: dict, message: str) -> list[str]:
    """Create the markdown, table and link artifacts of this run; returns their keys."""
    record = outcome["record"]
    rows = metric_rows(metrics, record.get("gate") or {})
    report = (Path(project_dir) / REPORT).resolve()
    create_markdown_artifact(
        key=MARKDOWN_KEY,
        markdown=markdown(message, record, rows, report, outcome.get("stages_run", [])),
        description=message,
    )
    create_table_artifact(key=TABLE_KEY, table=rows, description="headline test metrics of the challenger")
    keys = [MARKDOWN_KEY, TABLE_KEY]
    if report.is_file():
        create_link_artifact(
            key=LINK_KEY, link=report.as_uri(), link_text=REPORT, description="evaluation report"
        )
        keys.append(LINK_KEY)
    return keys
