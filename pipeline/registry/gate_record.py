"""What the register stage writes about a gate decision: version tags, the version's description,
and the record of a `dvc exp run` that registers nothing."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from pipeline.config import Config, registered_name
from pipeline.core import manifest
from pipeline.core.provenance import flat_metrics
from pipeline.evaluation import report_header
from pipeline.registry import gate

log = logging.getLogger(__name__)


def gate_tags(decision: gate.Decision, champion, champ: dict | None, rescored: bool, cfg: Config) -> dict:
    tags = {
        "gate.decision": "promote" if decision.promote else "reject",
        "gate.reason": decision.reason,
        "gate.metric": cfg.gate.metric,
        "gate.champion_version": str(champion.version) if champion else "",
        "gate.champion_rescored": str(rescored).lower(),
        "gate.floor": "below" if decision.below_floor else "pass",
    }
    for name, delta in decision.deltas.items():
        tags[f"gate.delta.{name}"] = repr(delta)
        if champ is not None and name in champ:
            tags[f"gate.champion.{name}"] = repr(champ[name])
    return tags | new_data_tags(decision.new_data)


def new_data_tags(result: dict | None) -> dict[str, str]:
    """gate.new_data: applied | not_applicable, and when applied n, champion, challenger, pass."""
    if not result:
        return {}
    if not result.get("applicable"):
        return {"gate.new_data": "not_applicable", "gate.new_data.reason": result.get("reason", "")}
    return {
        "gate.new_data": "applied",
        "gate.new_data.n": str(result["n"]),
        "gate.new_data.champion": repr(result["champion"]),
        "gate.new_data.challenger": repr(result["challenger"]),
        "gate.new_data.pass": str(result["pass"]).lower(),
    }


def new_data_line(result: dict | None) -> str:
    """One line for the version description and the Prefect artifact."""
    if not result:
        return "New data since the champion: not checked."
    verdict = "" if not result.get("applicable") else ("passes: " if result["pass"] else "FAILS: ")
    return f"New data since the champion ({result.get('metric')}, margin {result.get('margin')}): {verdict}{result.get('reason')}."


def finite(values: dict[str, float]) -> dict[str, float | None]:
    """Strict-JSON numbers: NaN/inf become null."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def summary(decision: gate.Decision, champion, cfg: Config) -> dict:
    """The gate part of reports/registered.json: decision, reason, deltas, the champion compared."""
    return {
        "promote": decision.promote,
        "reason": decision.reason,
        "metric": cfg.gate.metric,
        "deltas": finite(decision.deltas),
        "champion_version": str(champion.version) if champion else None,
        "floor": {"passed": not decision.below_floor, "failures": list(decision.below_floor)},
        "new_data": decision.new_data,
    }


def experiment_record(
    cfg: Config, run_id: str, experiment: str, decision, champion, outputs, started, tags: dict
) -> dict:
    """Under `dvc exp run`: the run is logged, but no version is created and no alias moves."""
    record = {
        "model_name": registered_name(cfg),
        "version": None,
        "run_id": run_id,
        "aliases": [],
        "dvc_experiment": experiment,
        "gate": summary(decision, champion, cfg) | {"promote": False, "would_promote": decision.promote},
        "registered_at": report_header.utc_now(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    manifest.write_json(record, outputs["record"])
    if outputs.get("page"):  # the page DVC expects, saying that nothing was registered
        would = "would promote" if decision.promote else "would not promote"
        shown = record | {
            "version": f"- (DVC experiment {experiment}: not registered)",
            "gate": record["gate"] | {"reason": f"{would}: {decision.reason}"},
        }
        page = report_header.registered_page(shown, tags["git.commit"], tags["git.dirty"] == "true")
        Path(outputs["page"]).write_text(page, encoding="utf-8")
    log.info(
        "DVC experiment %s: logged MLflow run %s; no model version registered, no alias moved "
        "(the gate %s: %s)",
        experiment,
        run_id,
        "would promote" if decision.promote else "would reject",
        decision.reason,
    )
    return record


def description(cfg: Config, decision: gate.Decision, metrics: dict, champion, tags: dict) -> str:
    """The version's description: the gate decision first, then what was measured and from where."""
    verdict = (
        "Promoted to champion"
        if decision.promote
        else "Below the gate floor (no alias)"
        if decision.below_floor
        else "Not promoted (challenger only)"
    )
    metric = cfg.gate.metric
    value = flat_metrics(metrics).get(metric)
    lines = [
        f"{verdict}: {decision.reason}.",
        f"Frozen test: {metric} {value:.4f} on {metrics.get('n_test', '?')} test images "
        f"({metrics.get('n_test_patients', '?')} patients); threshold {metrics.get('threshold')} chosen on val."
        if value is not None
        else f"{metric}: not measured.",
        new_data_line(decision.new_data),
        f"Champion at registration: {'v' + str(champion.version) if champion else 'none'}. "
        f"git {tags.get('git.commit', 'unknown')[:12]}{' (dirty)' if tags.get('git.dirty') == 'true' else ''}.",
    ]
    return "\n".join(lines)
