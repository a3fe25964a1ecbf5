"""The class-folder view (`class_view/<class_name>/<file>` as relative symlinks) and output swapping."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pandas as pd
from tqdm import tqdm

log = logging.getLogger(__name__)


def build_class_view(df: pd.DataFrame, view: Path) -> int:
    """Link every labelled row as view/<class_name>/<file name>; return the number of links.

    Links are relative (`../../../raw/...`), so the view survives moving the project. Two files
    with one name in one class (e.g. the same name in train/ and test/) get the flattened path as name.
    """
    view.mkdir(parents=True, exist_ok=True)
    labelled = df[df["class_name"].notna()]
    taken: set[tuple[str, str]] = set()
    up: dict[tuple[str, str], str] = {}  # (folder of the file, class) -> relative way there
    for path, class_name in tqdm(
        zip(labelled["path"], labelled["class_name"], strict=True),
        total=len(labelled),
        desc="class view",
        unit="link",
        mininterval=2.0,
        disable=None,
    ):
        parent, _, file_name = str(path).rpartition("/")
        name = file_name
        folder = view / str(class_name)
        if (parent, class_name) not in up:
            folder.mkdir(exist_ok=True)
            up[parent, class_name] = os.path.relpath(parent or ".", folder)
        if (class_name, name) in taken:
            name = "__".join(PurePosixPath(path).parts)
        taken.add((class_name, name))
        os.symlink(f"{up[parent, class_name]}/{file_name}", folder / name)
    return len(labelled)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def fresh_dirs(*dirs: Path) -> Iterator[None]:
    """Give the body empty `dirs`; on failure put the previous contents back (no partial outputs)."""
    backups = {d: d.with_name(f".{d.name}.previous") for d in dirs}
    for d, backup in backups.items():
        _remove(backup)
        if d.exists() or d.is_symlink():
            d.rename(backup)
        d.mkdir(parents=True)
    try:
        yield
    except BaseException:
        for d, backup in backups.items():
            _remove(d)
            if backup.exists():
                backup.rename(d)
        raise
    for backup in backups.values():
        _remove(backup)
