"""The nightly run's "what changed since the champion" artifact, from reports/changes.json, and
the lines of the `nightly-report` artifact on the gate's comparison on that new data.

Markdown artifact `nightly-changes` (a stable key, so the Prefect UI shows its history): the
status, the headline counts (added, removed, changed bytes, relabelled, new and gone patients),
vanished or new classes, the drift flags, the embedding test and the champion on the new data.
Whatever the status (compared, baseline, unavailable, or the stage failed), it says so in a line
and the run goes on.
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

CHANGES_KEY = "nightly-changes"
CHANGES_PAGE = "reports/changes.html"
MAX_FLAGS = 10


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _four(value, signed: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _champion(doc: dict) -> str:
    champ = doc.get("champion") or {}
    return f"{champ.get('name', '?')} v{champ.get('version', '?')}" if champ else "no champion"


def _flags(doc: dict) -> list[str]:
    flagged = [d for d in doc.get("drift") or [] if isinstance(d, dict) and d.get("flag")]
    lines = [
        f"- {d.get('name', '?')} ({d.get('class', 'all')}): {d.get('detail') or _number(d.get('distance'))}"
        for d in flagged[:MAX_FLAGS]
    ]
    if len(flagged) > MAX_FLAGS:
        lines.append(f"- … {len(flagged) - MAX_FLAGS} more in {CHANGES_PAGE}")
    total = len(doc.get("drift") or [])
    return [f"**Drift flags:** {len(flagged)} of {total} properties", *lines]


def _embedding(doc: dict) -> str:
    emb = doc.get("embedding")
    if not isinstance(emb, dict):
        return "**Embedding drift:** not tested"
    flag = "FLAGGED" if emb.get("flag") else "not flagged"
    return f"**Embedding drift ({emb.get('test', '?')}):** {flag}, p = {_number(emb.get('p_value'))}"


def _champion_on_new(doc: dict) -> str:
    on_new = doc.get("champion_on_new")
    if not isinstance(on_new, dict) or not on_new.get("n"):
        return "**Champion on new data:** no new labelled images"
    parts = []
    for name, value in (on_new.get("metrics") or {}).items():
        if isinstance(value, dict):
            ci = value.get("ci") or []
            bounds = f" [{_number(ci[0])}, {_number(ci[1])}]" if len(ci) == 2 else ""
            parts.append(f"{name} {_number(value.get('value'))}{bounds}")
    n = f"{on_new['n']} images ({_number(on_new.get('n_patients'))} patients)"
    return f"**Champion on new data:** {n}, threshold {_number(on_new.get('threshold'))}: " + (
        ", ".join(parts) or "no metrics"
    )


def changes_markdown(doc: dict) -> str:
    """The artifact text for a changes.json document (or {"status": "failed", "reason": ...})."""
    status = str(doc.get("status", "unknown"))
    lines = [f"# What changed since the champion ({_champion(doc)})", ""]
    lines.append(f"**Status:** {status}: {doc.get('reason') or 'no reason given'}")
    if status == "failed":
        return "\n".join([*lines, "", "The nightly run went on without the changes report."])
    patients = doc.get("patients") or {}
    keys = ("added", "removed", "changed", "relabelled")
    lines += [
        "",
        "| added | removed | changed bytes | relabelled | new patients | patients gone |",
        "|---|---|---|---|---|---|",
        "| "
        + " | ".join(_number(doc.get(k)) for k in keys)
        + f" | {_number(patients.get('new'))} | {_number(patients.get('gone'))} |",
    ]
    for key, words in (("vanished_classes", "Vanished classes"), ("new_classes", "New classes")):
        if doc.get(key):
            lines += ["", f"**{words}:** {', '.join(map(str, doc[key]))}"]
    if status == "compared":
        lines += ["", *_flags(doc), "", _embedding(doc), "", _champion_on_new(doc)]
    return "\n".join([*lines, "", f"**Report:** {CHANGES_PAGE}"])


def new_data_lines(result: dict | None) -> list[str]:
    """The gate's second comparison (registered.json gate.new_data): both models on the test
    images new since the champion; the table above is the frozen test manifest."""
    if not result:
        return []
    if not result.get("applicable"):
        return ["", f"**On new data since the champion:** {result.get('reason', '?')} (does not block)"]
    champ, chall = result.get("champion"), result.get("challenger")
    delta = chall - champ if isinstance(champ, int | float) and isinstance(chall, int | float) else None
    verdict = "passes" if result.get("pass") else "**fails: promotion refused**"
    return [
        "",
        f"**On new data since the champion** ({result.get('n')} test images, "
        f"{result.get('n_patients') or '?'} patients, margin {_four(result.get('margin'))}): {verdict}",
        "",
        "| metric | challenger | champion | change |",
        "|---|---|---|---|",
        f"| {result.get('metric', '?')} | {_four(chall)} | {_four(champ)} | {_four(delta, True)} |",
    ]


@task(name="publish-changes", timeout_seconds=60)
def publish_changes(doc: dict) -> str:
    """Create the `nightly-changes` markdown artifact; returns its key."""
    description = f"changes since the champion: {doc.get('status', 'unknown')}"
    create_markdown_artifact(key=CHANGES_KEY, markdown=changes_markdown(doc), description=description)
    return CHANGES_KEY
