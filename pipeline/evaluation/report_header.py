"""Which model the report describes: the header of report.html and the register stage's registered.html.

evaluate runs before register, so report.html states what is known at evaluate time: model name,
architecture, git revision (and whether the tree had uncommitted code/params changes), params
sha256 and the evaluation time (UTC). The version number, aliases and gate decision only exist
after the register stage; it writes them to reports/registered.html, a small page that links back
to report.html (and report.html's header links forward to it).
Why a separate page and not a re-rendered report.html: report.html is the evaluate stage's DVC
output; if register rewrote it, `dvc status` would call evaluate changed and the next `dvc repro`
would re-evaluate and register a new version although nothing changed.
"""

from __future__ import annotations

import datetime as dt
import html

from pipeline.config import Config, registered_name
from pipeline.core.provenance import git_revision, params_hash

REGISTERED_PAGE = "registered.html"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def evaluate_header(cfg: Config, train_summary: dict) -> dict:
    """What report.html's header shows (all known before registration)."""
    commit, dirty = git_revision()
    train = (train_summary.get("params") or {}).get("train") or {}
    return {
        "model_name": registered_name(cfg),
        "architecture": train.get("model") or cfg.train.model,
        "git_commit": commit,
        "git_dirty": dirty,
        "params_sha256": params_hash(cfg),
        "evaluated_at": utc_now(),
        "registered_page": REGISTERED_PAGE,
    }


def _row(name: str, value: str) -> str:
    return f'<tr><th class="name">{html.escape(name)}</th><td class="name">{value}</td></tr>'


def registered_page(record: dict, commit: str, dirty: bool, report: str = "report.html") -> str:
    """reports/registered.html: version, aliases, gate decision, git revision and time of one registration."""
    gate = record.get("gate") or {}
    decision = "promoted to champion" if gate.get("promote") else "not promoted"
    esc = html.escape
    title = f"{record.get('model_name', '?')} v{record.get('version', '?')}"
    champion = gate.get("champion_version")
    rows = [
        _row("model", f"<b>{esc(title)}</b>"),
        _row("aliases", esc(", ".join(record.get("aliases") or []) or "none")),
        _row("gate decision", f"<b>{esc(decision)}</b>: {esc(str(gate.get('reason', '')))}"),
        _row("gate metric", esc(str(gate.get("metric", "")))),
        _row("compared with", esc(f"champion v{champion}" if champion else "no champion")),
        _row("git revision", f"<code>{esc(commit)}</code>" + (" (uncommitted changes)" if dirty else "")),
        _row("MLflow run", f"<code>{esc(str(record.get('run_id', '')))}</code>"),
        _row("registered at", esc(str(record.get("registered_at", "")))),
    ]
    warning = record.get("image_level_warning")
    note = (
        '<p style="background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px" id="image-level">'
        f"<b>Warning:</b> {esc(warning)}</p>"
        if warning
        else ""
    )
    deltas = gate.get("deltas") or {}
    champ = gate.get("champion_metrics") or {}
    table = "".join(
        f'<tr><td class="name">{esc(k)}</td><td>{_fmt(champ.get(k))}</td><td>{_fmt(v, True)}</td></tr>'
        for k, v in deltas.items()
    )
    compare = (
        f"<h2>Against the champion</h2><table><tr><th class='name'>metric</th><th>champion</th>"
        f"<th>challenger - champion</th></tr>{table}</table>"
        if table
        else ""
    )
    compare += _new_data_section(gate.get("new_data"))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>registered: {esc(title)}</title>'
        "<style>body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;"
        "max-width:900px;color:#222}table{border-collapse:collapse}th,td{border:1px solid #ccc;"
        "padding:4px 10px;text-align:right}th{background:#f3f3f3}.name{text-align:left}</style></head>"
        f"<body><h1>Registration: {esc(title)}</h1>{note}<table>{''.join(rows)}</table>{compare}"
        f'<p>Evaluation report: <a href="{esc(report)}">{esc(report)}</a></p></body></html>\n'
    )


def _new_data_section(result: dict | None) -> str:
    """The gate's second comparison: both models on the new test images since the champion."""
    if not result:
        return ""
    esc = html.escape
    if not result.get("applicable"):
        verdict = "not applicable (does not block)"
    else:
        verdict = "passes" if result.get("pass") else "<b>fails: promotion refused</b>"
    champ, chall = result.get("champion"), result.get("challenger")
    delta = chall - champ if isinstance(champ, int | float) and isinstance(chall, int | float) else None
    rows = [
        _row("verdict", verdict),
        _row("images (patients)", esc(f"{result.get('n', 0)} ({result.get('n_patients') or '-'})")),
        _row(f"champion {result.get('metric', '')}", _fmt(champ)),
        _row(f"challenger {result.get('metric', '')}", _fmt(chall)),
        _row("challenger - champion", _fmt(delta, True)),
        _row("margin", _fmt(result.get("margin"))),
        _row("detail", esc(str(result.get("reason", "")))),
    ]
    return (
        '<h2 id="new-data">On new data since the champion</h2><p>Images added or changed since the '
        "champion that are in the current test split: the champion never saw them, the challenger "
        f"did not train on them.</p><table>{''.join(rows)}</table>"
    )


def _fmt(value, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
