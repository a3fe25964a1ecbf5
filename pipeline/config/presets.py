"""Presets: one params file per source system in presets/, applied onto params.yaml.

`apply(name)` rewrites only the keys the preset names, line by line, so every other key, the
comments and the layout of params.yaml stay as they are. A preset is a YAML mapping with the
same sections as params.yaml; its first comment line is its one-line description.
A preset that does not exist, or names a key params.yaml lacks, is a one-line PresetError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import config
from pipeline.core.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


class PresetError(ConfigError):
    """A preset that cannot be applied (unknown name, key missing from params.yaml, bad value)."""


@dataclass(frozen=True)
class Leaf:
    line: int  # index into the file's lines
    indent: str
    key: str
    value: str  # the value text as written (without the comment)
    comment: str  # '' or '# ...' as written after the value
    comment_col: int  # column of the comment's '#' (-1 without one)


def available(root: Path = PRESETS_DIR) -> dict[str, str]:
    """{name: one-line description} of presets/*.yaml, sorted by name."""
    out = {}
    for path in sorted(Path(root).glob("*.yaml")):
        first = next((ln for ln in path.read_text().splitlines() if ln.startswith("#")), "#")
        out[path.stem] = first.lstrip("#").strip()
    return out


def load(name: str, root: Path = PRESETS_DIR) -> dict:
    path = Path(root) / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(available(root)) or "none"
        raise PresetError(f"preset {name!r} does not exist; available: {names}")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise PresetError(f"preset {path} must be a mapping of params.yaml sections")
    return doc


def flatten(doc: dict, prefix: str = "") -> dict[str, object]:
    """{'train': {'augment': {'flip': True}}} -> {'train.augment.flip': True} (lists are leaves)."""
    out: dict[str, object] = {}
    for key, value in doc.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, dotted + ".")
        else:
            out[dotted] = value
    return out


def _split_comment(rest: str) -> tuple[str, str, int]:
    """' 12   # epochs' -> ('12', '# epochs', 6): value, comment, comment offset in `rest`
    (-1 without one). A '#' inside quotes or not after a blank is not a comment."""
    quote = None
    for i, ch in enumerate(rest):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i:], i
    return rest.strip(), "", -1


def scan(lines: list[str]) -> dict[str, Leaf]:
    """Dotted key -> Leaf for every scalar/flow-list key of a block-style YAML mapping."""
    leaves: dict[str, Leaf] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    for i, line in enumerate(lines):
        m = KEY_LINE.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        value, comment, offset = _split_comment(m["rest"])
        column = line.index(":", len(m["indent"])) + 1 + offset if comment else -1
        path = ".".join([k for _, k in stack] + [m["key"]])
        if value == "":
            stack.append((indent, m["key"]))  # a nested mapping (block style) starts here
        else:
            leaves[path] = Leaf(i, m["indent"], m["key"], value, comment, column)
    return leaves


def render(value: object) -> str:
    """A value as one line of flow-style YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _rewrite(leaf: Leaf, value: object) -> str:
    """The leaf's line with the new value; its comment stays in its column (or 2 blanks after)."""
    head = f"{leaf.indent}{leaf.key}: {render(value)}"
    if not leaf.comment:
        return head
    return head.ljust(max(leaf.comment_col, len(head) + 2)) + leaf.comment


def apply_text(text: str, preset: dict, name: str = "preset") -> tuple[str, list[str]]:
    """(new params text, ['key: old -> new', ...]) with only the preset's keys rewritten."""
    lines = text.splitlines()
    leaves = scan(lines)
    changes = []
    for key, value in flatten(preset).items():
        leaf = leaves.get(key)
        if leaf is None:
            raise PresetError(
                f"preset {name} sets {key}, which params.yaml lacks; add the key or fix the preset"
            )
        lines[leaf.line] = _rewrite(leaf, value)
        if leaf.value != render(value):
            changes.append(f"{key}: {leaf.value} -> {render(value)}")
    new_text = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    parsed = yaml.safe_load(new_text) or {}
    flat = flatten(parsed)
    wrong = [k for k, v in flatten(preset).items() if flat.get(k) != v]
    if wrong:  # the line rewrite must read back as the preset says (guards odd YAML layouts)
        raise PresetError(f"preset {name}: {wrong[0]} did not read back as written; edit params.yaml by hand")
    try:
        config.from_dict(parsed)
    except ConfigError as exc:
        raise PresetError(f"preset {name} gives invalid params: {exc}") from exc
    return new_text, changes


def apply(name: str, params: Path = Path("params.yaml"), root: Path = PRESETS_DIR) -> list[str]:
    """Rewrite params.yaml with preset `name`; return the changed keys ('key: old -> new')."""
    params = Path(params)
    if not params.is_file():
        raise PresetError(f"params file {params} not found; run from the project root or pass --params")
    new_text, changes = apply_text(params.read_text(), load(name, root), name)
    tmp = params.with_name(params.name + ".tmp")
    tmp.write_text(new_text)
    tmp.replace(params)
    return changes
