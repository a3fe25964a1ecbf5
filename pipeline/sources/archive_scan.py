"""Reading an archive's member list into links.Node entries, with the safety checks that need
nothing but the list: unsafe names and links, devices, member count and a streaming size stop.
Non-UTF-8 tar names are stored with those bytes read as Latin-1; a zip name flagged UTF-8 that
is not is one line. Duplicated names: the last member wins, as tar and unzip do (logged)."""

from __future__ import annotations

import calendar
import contextlib
import logging
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.core.errors import DataError
from pipeline.sources.files import log_renamed, safe_relpath, utf8_name
from pipeline.sources.links import Node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int | None  # explicit cap on unpacked bytes (None: only the free-space check)
    max_members: int
    free_bytes: int | None = None  # free space where data/raw lives (None: not checked)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def check_space(path: Path, total: int, new: int, limits: ArchiveLimits) -> None:
    """Refuse an archive that would not fit: the explicit cap, then free disk space."""
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise DataError(
            f"archive {path} unpacks to more than data.max_archive_bytes ({limits.max_bytes} bytes); "
            "raise it if the archive is genuine"
        )
    need = total + new
    if limits.free_bytes is not None and need > limits.free_bytes:
        raise DataError(
            f"archive {path} unpacks to {_gib(total)}: ingest needs {_gib(need)} (the files plus DVC's cache "
            f"copy of the new ones) but only {_gib(limits.free_bytes)} is free; free disk space first"
        )


def unsafe(path: Path, name: str, why: str) -> DataError:
    return DataError(
        f"archive {path} has an unsafe member {name!r} ({why}); refusing to extract it. "
        "Rebuild the archive with plain files under relative paths"
    )


def _member_rel(path: Path, name: str) -> str:
    try:
        return safe_relpath(name)
    except ValueError as exc:
        raise unsafe(path, name, str(exc)) from None


def _check_link(path: Path, rel: str, target: str, symlink: bool) -> None:
    """Reject a link whose target leaves the extraction folder."""
    joined = posixpath.join(posixpath.dirname(rel), target) if symlink else target
    resolved = posixpath.normpath(joined)
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise unsafe(path, rel, f"link to {target!r} outside the archive")


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[zipfile.ZipFile | tarfile.TarFile]:
    if str(path).lower().endswith(".zip"):
        try:
            zf = zipfile.ZipFile(path)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"archive {path} has a member name flagged UTF-8 that is not valid UTF-8 ({exc.object[:40]!r}); "
                "repack it with a tool that writes UTF-8 names"
            ) from None
        with zf:
            yield zf
    else:
        with tarfile.open(path, "r:*") as tf:
            yield tf


def offset(handle: zipfile.ZipInfo | tarfile.TarInfo) -> int:
    return handle.header_offset if isinstance(handle, zipfile.ZipInfo) else handle.offset


def open_member(opened, handle) -> IO[bytes]:
    if isinstance(opened, zipfile.ZipFile):
        return opened.open(handle)
    return opened.extractfile(handle)


def _check_count(path: Path, members: int, total: int, limits) -> None:
    if members > limits.max_members:
        raise DataError(
            f"archive {path} has more than {limits.max_members} members; "
            "raise data.max_archive_members if it is genuine"
        )
    budget = [b for b in (limits.max_bytes, limits.free_bytes) if b is not None]
    if budget and total > min(budget):  # stops a bomb while the list is still being read
        check_space(path, total, 0, limits)


def _zip_entries(path: Path, zf: zipfile.ZipFile, limits) -> Iterator[tuple[str, Node | None]]:
    infos = zf.infolist()
    _check_count(path, len(infos), sum(i.file_size for i in infos), limits)
    for info in infos:
        rel = _member_rel(path, info.filename)
        if info.is_dir():
            yield rel, None
            continue
        mode, encrypted = info.external_attr >> 16, bool(info.flag_bits & 0x1)
        if stat.S_ISLNK(mode):
            if encrypted:
                raise DataError(
                    f"archive {path} has an encrypted link member {rel!r}; medpipe cannot decrypt it"
                )
            target = zf.read(info).decode("utf-8", "replace")
            _check_link(path, rel, target, symlink=True)
            yield rel, Node(rel, "symlink", target=target)
            continue
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise unsafe(path, info.filename, "device or fifo")
        stamp = calendar.timegm((*info.date_time, 0, 0, 0))
        yield rel, Node(rel, "file", info.file_size, handle=info, mtime=stamp, encrypted=encrypted)


def _tar_entries(path: Path, tf: tarfile.TarFile, limits) -> Iterator[tuple[str, Node | None]]:
    members, total = [], 0
    for member in tf:  # streams; stops early on a bomb
        members.append(member)
        total += member.size if member.isfile() else 0
        _check_count(path, len(members), total, limits)
    for member in members:
        rel = _member_rel(path, member.name)
        if member.isdir():
            yield rel, None
        elif member.issym() or member.islnk():
            _check_link(path, rel, member.linkname, symlink=member.issym())
            target = member.linkname if member.issym() else _member_rel(path, member.linkname)
            yield rel, Node(rel, "symlink" if member.issym() else "hardlink", target=target)
        elif member.isfile():
            yield rel, Node(rel, "file", member.size, handle=member, mtime=member.mtime)
        else:
            raise unsafe(path, member.name, "device, fifo or other special file")


def scan(path: Path, opened, mirror, limits) -> tuple[dict[str, Node], set[str]]:
    """({rel: node} with the last member of each name, every folder path) of an archive."""
    entries = _zip_entries if isinstance(opened, zipfile.ZipFile) else _tar_entries
    nodes: dict[str, Node] = {}
    dirs: set[str] = {""}
    renamed: dict[str, str] = {}
    duplicates: list[str] = []
    for rel, node in entries(path, opened, limits):
        safe = utf8_name(rel)
        if safe != rel:
            renamed[rel] = safe
            node = node and Node(
                safe, node.kind, node.size, node.target, node.handle, node.mtime, node.encrypted
            )
        parts = safe.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if node is None:
            dirs.add(safe)
            continue
        if safe in nodes:
            duplicates.append(safe)
        nodes[safe] = node
    if duplicates:
        mirror.skip("duplicate-name", len(duplicates))
        log.warning(
            "archive %s holds %d name(s) more than once (e.g. %r): the last member of each wins, as tar does",
            path,
            len(duplicates),
            duplicates[0],
        )
    log_renamed(renamed, f"archive {path}")
    return nodes, dirs
