"""What reports/headline.json (the DVC metrics file), reports/metrics.json and reports/diagnostics.json hold.

`dvc metrics show`, `dvc metrics diff` and `dvc exp show` print every key of a metrics file as a
column, so the DVC metrics file is headline.json: the DVC_KEYS below plus gate.metric, about ten
numbers that fit one screen line. metrics.json holds the flat numbers the gate, the registry and
the flows read (at most MAX_KEYS of them):
    test, image level:    accuracy balanced_accuracy sensitivity specificity ppv npv f1 roc_auc
                          pr_auc ece threshold n_test n_test_patients
    test, patient level:  patient_<each headline metric above>, patient_threshold
                          or, where patients hold both classes (IDC slides; FRACTION mode of
                          pipeline.evaluation.patient_fraction): patient_fraction_mae and
                          patient_fraction_pearson INSTEAD (no patient_<headline> key, which
                          would be degenerate by construction)
    gate metric CIs:      <gate>_ci_lo <gate>_ci_hi patient_<gate>_ci_lo patient_<gate>_ci_hi
                          (95 % patient-bootstrap interval of gate.metric, image and patient level;
                          the patient pair only where patient_<gate> is a key)
Undefined values (e.g. the threshold of a multi-class task) are null. The register gate reads
metrics[gate.metric], so gate.metric may name any of these keys.

diagnostics.json is the full evaluation result: the same numbers plus CIs of every metric,
per-class tables, the confusion matrix, the patient-level detail, the threshold rules (prose),
class names and the test manifest's sha256. It is a plain DVC output, not a metrics file.
"""

from __future__ import annotations

from pipeline.core.errors import ConfigError
from pipeline.evaluation.metrics import HEADLINE
from pipeline.evaluation.patient_fraction import FRACTION, FRACTION_KEYS

MAX_KEYS = 30
DVC_KEYS = (
    "roc_auc",
    "pr_auc",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "f1",
    "threshold",
    "n_test",
)
PATIENT = "patient_"
IMAGE_KEYS = (*HEADLINE, "threshold", "n_test", "n_test_patients")
PATIENT_KEYS = (*HEADLINE, "threshold")


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def patient_headline(patient: dict) -> dict:
    """patient_<metric> keys from the patient-level block (or score_model's patient dict)."""
    keys = FRACTION_KEYS if patient.get("mode") == FRACTION else PATIENT_KEYS
    return {PATIENT + key: _number(patient.get(key)) for key in keys}


def _ci_keys(prefix: str, metric: str, ci: dict | None) -> dict:
    bounds = (ci or {}).get(metric)
    lo, hi = bounds if isinstance(bounds, list | tuple) and len(bounds) == 2 else (None, None)
    return {f"{prefix}{metric}_ci_lo": _number(lo), f"{prefix}{metric}_ci_hi": _number(hi)}


def gate_base(gate_metric: str) -> str | None:
    """The headline metric whose CIs go into metrics.json (patient_roc_auc -> roc_auc)."""
    base = gate_metric.removeprefix(PATIENT)
    return base if base in HEADLINE else None


def headline(result: dict, gate_metric: str) -> dict:
    """metrics.json: the flat numeric headline of an evaluate result (see module doc)."""
    patient = result.get("patient_level") or {}
    out = {key: _number(result.get(key)) for key in IMAGE_KEYS}
    out |= patient_headline(patient)
    base = gate_base(gate_metric)
    if base is not None and (result.get("ci") or patient.get("ci")):
        out |= _ci_keys("", base, result.get("ci"))
        if PATIENT + base in out:
            out |= _ci_keys(PATIENT, base, patient.get("ci"))
    if len(out) > MAX_KEYS:  # a programming error: new detail belongs in diagnostics.json
        raise AssertionError(f"metrics.json would hold {len(out)} keys > {MAX_KEYS}")
    return out


def check_gate_keys(metrics: dict, gate_metric: str, guard_metrics=(), floors=()) -> None:
    """One clear line when the gate names a patient_ key this data's patient level does not carry."""
    named = [gate_metric, *guard_metrics, *floors]
    missing = [m for m in dict.fromkeys(named) if m.startswith(PATIENT) and m not in metrics]
    shares = [m for m in (gate_metric, *guard_metrics) if m.removeprefix(PATIENT) in FRACTION_KEYS]
    if shares:
        raise ConfigError(
            f"params: gate names {', '.join(shares)}: positive-share agreement is reported, not gated "
            "(the gate compares headline metrics where higher is better); use an image-level metric such as roc_auc"
        )
    if missing:
        carried = ", ".join(k for k in metrics if k.startswith(PATIENT))
        why = (
            "its patients hold both classes, so patient level is positive-share agreement"
            if PATIENT + FRACTION_KEYS[0] in metrics
            else "its patient-level keys are"
        )
        raise ConfigError(
            f"params: gate names {', '.join(missing)}, which this data's reports/metrics.json does not "
            f"carry ({why}: {carried}); use an image-level metric such as roc_auc"
        )


def dvc_headline(metrics: dict, gate_metric: str) -> dict:
    """headline.json: DVC_KEYS and the gate metric, taken from metrics.json's numbers."""
    keys = DVC_KEYS if gate_metric in DVC_KEYS else (*DVC_KEYS, gate_metric)
    return {key: metrics.get(key) for key in keys}


def diagnostics(result: dict, gate_metric: str) -> dict:
    """diagnostics.json: the full result, plus which metric the headline CIs are for."""
    return {"gate_metric": gate_metric, **result}
