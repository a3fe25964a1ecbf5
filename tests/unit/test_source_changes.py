"""The e2e helper that changes an IDC source between two nightly runs does what it says."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from helpers.source_changes import add_patients, drop_patient, patients, regamma, relabel, write_source

from pipeline.config import DataConfig, SampleConfig
from pipeline.formats import ADAPTERS


def _files(dest: Path) -> dict[str, tuple[str, str]]:
    """path -> (sha256, class name as the IDC adapter parses it)."""
    out = {}
    for path in sorted(dest.rglob("*.png")):
        rel = path.relative_to(dest).as_posix()
        parsed = ADAPTERS["idc"].parse(PurePosixPath(rel), DataConfig(format="idc"))
        out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), parsed.class_name)
    return out


def test_each_mutation_is_the_change_it_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_source(src, SampleConfig(patients=3, patches_per_patient=6, image_size=16, seed=3))
    before = _files(src)
    old_patients = patients(src)

    added = add_patients(src, 2, patches=5)
    assert len(set(patients(src)) - set(old_patients)) == 2 and added and not set(added) & set(before)
    gone = drop_patient(src, old_patients[0])
    assert gone and all(p.startswith(f"{old_patients[0]}/") for p in gone)

    now = _files(src)
    changed = regamma(src, 3, seed=0)
    after = _files(src)
    assert len(changed) == 3 and all(after[p][0] != now[p][0] and after[p][1] == now[p][1] for p in changed)

    by_sha = {sha: (path, cls) for path, (sha, cls) in after.items()}
    moved = relabel(src, 2, seed=1)
    final = _files(src)
    for path in moved:
        sha, cls = final[path]
        old_path, old_cls = by_sha[sha]  # same bytes as before, at another path, other label
        assert old_path != path and old_cls != cls and old_path not in final
