"""manifest_diff / new_rows: the identity rules of the issue #19 design on small frames."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.drift.diff import manifest_diff, new_rows


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["path", "sha256", "class_name", "patient_id", "split"])


THEN = frame(
    [
        ("NORMAL/a.png", "h1", "NORMAL", "p1", "train"),
        ("NORMAL/b.png", "h2", "NORMAL", "p1", "test"),
        ("PNEUMONIA/c.png", "h3", "PNEUMONIA", "p2", "train"),
        ("PNEUMONIA/d.png", "h4", "PNEUMONIA", "p3", "val"),
    ]
)


def test_nothing_changed_counts_nothing():
    out = manifest_diff(THEN, THEN.copy())
    assert {k: out[k] for k in ("added", "removed", "changed", "relabelled")} == dict.fromkeys(
        ("added", "removed", "changed", "relabelled"), 0
    )
    assert out["by_class"]["NORMAL"] == {
        "then": 2,
        "now": 2,
        "added": 0,
        "removed": 0,
        "changed": 0,
        "relabelled": 0,
    }
    assert out["patients"] == {"then": 3, "now": 3, "new": 0, "gone": 0}
    assert new_rows(THEN, THEN).empty


def test_same_bytes_same_path_other_label_is_relabelled():
    now = THEN.copy()
    now.loc[0, "class_name"] = "PNEUMONIA"
    out = manifest_diff(THEN, now)
    assert (out["relabelled"], out["added"], out["removed"], out["changed"]) == (1, 0, 0, 0)
    assert out["by_class"]["PNEUMONIA"]["relabelled"] == 1
    assert out["by_split"]["train"]["relabelled"] == 1
    assert new_rows(THEN, now).empty  # the champion saw these bytes at this path


def test_bytes_moved_to_the_other_class_folder_are_relabelled_not_added():
    now = THEN.copy()
    now.loc[0, ["path", "class_name"]] = ["PNEUMONIA/a.png", "PNEUMONIA"]
    out = manifest_diff(THEN, now)
    assert (out["relabelled"], out["added"], out["removed"]) == (1, 0, 0)
    assert list(new_rows(THEN, now)["path"]) == ["PNEUMONIA/a.png"]


def test_changed_bytes_added_and_removed_paths_and_patients():
    now = THEN.iloc[1:].copy()  # a.png removed (patient p1 still has b.png)
    now.loc[now["path"] == "PNEUMONIA/d.png", "sha256"] = "h4-new"
    now = pd.concat([now, frame([("NORMAL/e.png", "h5", "NORMAL", "p9", "test")])], ignore_index=True)
    out = manifest_diff(THEN, now)
    assert (out["added"], out["removed"], out["changed"], out["relabelled"]) == (1, 1, 1, 0)
    assert out["by_class"]["NORMAL"] == {
        "then": 2,
        "now": 2,
        "added": 1,
        "removed": 1,
        "changed": 0,
        "relabelled": 0,
    }
    assert out["by_split"]["val"]["changed"] == 1
    assert out["patients"] == {"then": 3, "now": 4, "new": 1, "gone": 0}
    assert sorted(new_rows(THEN, now)["path"]) == ["NORMAL/e.png", "PNEUMONIA/d.png"]


def test_vanished_and_new_class_and_gone_patients():
    now = frame([("NORMAL/a.png", "h1", "NORMAL", "p1", "train"), ("COVID/z.png", "h9", "COVID", "p7", None)])
    out = manifest_diff(THEN, now)
    assert out["vanished_classes"] == ["PNEUMONIA"]
    assert out["new_classes"] == ["COVID"]
    assert out["by_class"]["PNEUMONIA"] == {
        "then": 2,
        "now": 0,
        "added": 0,
        "removed": 2,
        "changed": 0,
        "relabelled": 0,
    }
    assert out["by_split"]["none"]["added"] == 1
    assert out["patients"] == {"then": 3, "now": 2, "new": 1, "gone": 2}


@pytest.mark.parametrize("side", ["then", "now"])
def test_empty_side(side):
    empty = pd.DataFrame()
    then, now = (empty, THEN) if side == "then" else (THEN, empty)
    out = manifest_diff(then, now)
    assert (out["added"], out["removed"]) == ((4, 0) if side == "then" else (0, 4))
    assert len(new_rows(then, now)) == (4 if side == "then" else 0)
    assert out["vanished_classes"] == ([] if side == "then" else ["NORMAL", "PNEUMONIA"])


def test_a_path_listed_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        manifest_diff(THEN, pd.concat([THEN, THEN.iloc[:1]]))
