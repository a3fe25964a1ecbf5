"""Links inside an archive, resolved the way a file system would resolve them after extraction.

A symlink or hard-link member that resolves to a file inside the archive becomes a copy of that
file under the link's name; one that resolves to a folder (a class folder, say) brings every file
below it under the link's path. Links leaving the archive are refused earlier (archive.py); a
loop is one DataError; a link to nothing is returned as dangling (skipped and counted).
"""

from __future__ import annotations

import bisect
import posixpath
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import DataError

MAX_HOPS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class Node:
    """One archive member after name normalisation (the last member of a name wins)."""

    rel: str
    kind: str  # "file" | "symlink" | "hardlink"
    size: int = 0
    target: str = ""  # link target as stored
    handle: Any = None  # ZipInfo / TarInfo of a file
    mtime: float = 0.0
    encrypted: bool = False


class Resolver:
    def __init__(self, nodes: dict[str, Node], dirs: set[str], what: str, max_outputs: int) -> None:
        self.nodes, self.dirs, self.what, self.max_outputs = nodes, dirs, what, max_outputs
        self.sorted = sorted(nodes)
        self.produced = 0
        self.dangling = 0

    def _loop(self, rel: str) -> DataError:
        return DataError(
            f"{self.what} has a symlink loop at {rel!r}; remove that link and rebuild the archive"
        )

    def _target(self, rel: str, node: Node) -> str:
        base = posixpath.dirname(rel) if node.kind == "symlink" else ""
        path = posixpath.normpath(posixpath.join(base, node.target))
        return "" if path == "." else path

    def resolve(self, rel: str, hops: int = 0) -> str | None:
        """The real member path `rel` leads to ('' = the archive root), None when it leads nowhere."""
        cur = ""
        for part in rel.split("/"):
            cur = f"{cur}/{part}" if cur else part
            node = self.nodes.get(cur)
            if node is not None and node.kind != "file":
                if hops >= MAX_HOPS:
                    raise self._loop(rel)
                resolved = self.resolve(self._target(cur, node), hops + 1) if self._target(cur, node) else ""
                if resolved is None:
                    return None
                cur = resolved
                hops += 1
            elif node is None and cur not in self.dirs:
                return None
        return cur

    def _under(self, folder: str) -> list[str]:
        if not folder:
            return self.sorted
        start = bisect.bisect_left(self.sorted, folder + "/")
        end = bisect.bisect_left(self.sorted, folder + "0")  # "0" sorts right after "/"
        return self.sorted[start:end]

    def materialise(self, rel: str, depth: int = 0) -> list[tuple[str, str]] | None:
        """[(output path, file member)] that link `rel` stands for; None when dangling."""
        real = self.resolve(rel)
        if real is None:
            return None
        node = self.nodes.get(real)
        if node is not None and node.kind == "file":
            return self._count([(rel, real)])
        if not real or rel == real or rel.startswith(real + "/") or depth >= MAX_HOPS:
            raise self._loop(rel)
        out: list[tuple[str, str]] = []
        for child in self._under(real):
            virtual = rel + child[len(real) :] if real else f"{rel}/{child}"
            if self.nodes[child].kind == "file":
                out += self._count([(virtual, child)])
            else:
                sub = self.materialise(virtual, depth + 1)
                self.dangling += sub is None
                out += sub or []
        return out

    def _count(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        self.produced += len(pairs)
        if self.produced > self.max_outputs:
            raise DataError(
                f"{self.what} expands through its links to more than {self.max_outputs} files; "
                "raise data.max_archive_members if it is genuine"
            )
        return pairs
