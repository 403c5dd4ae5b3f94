"""Page selections (`1-3`, `2,5-7`, `all`) and the page markers of a document's text layer.

The text of a document reaches the prompt as its pages in order, each preceded by a marker line
exactly `--- page N ---` (N: the 1-based page number in the file) and separated by one blank line.
The marker format is a contract: the long-input splitter cuts a document's text at these lines,
so it is written by `join_pages` and read by `split_pages`, both here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PAGE_MARKER",
    "PageSelection",
    "describe_pages",
    "join_pages",
    "page_marker",
    "split_pages",
]

#: the line that precedes each page's text; `{n}` is the 1-based page number in the file
PAGE_MARKER = "--- page {n} ---"
_MARKER_LINE = re.compile(r"^--- page ([1-9][0-9]*) ---$", re.MULTILINE)
_RANGE = re.compile(r"^\s*([1-9][0-9]*)\s*(?:-\s*([1-9][0-9]*)\s*)?$")


def page_marker(n: int) -> str:
    """The marker line of page `n` (1-based)."""
    return PAGE_MARKER.format(n=n)


def join_pages(pages: Iterable[tuple[int, str]]) -> str:
    """A document's text: each (page number, text) as its marker line and its text, the pages
    separated by one blank line. A page's own trailing whitespace is dropped so that the blank
    line between pages is exactly one."""
    return "\n\n".join(f"{page_marker(n)}\n{text.rstrip()}" for n, text in pages)


def split_pages(text: str) -> list[tuple[int, str]]:
    """The (page number, text) pairs of a text written by `join_pages`, in order.

    Text before the first marker (a template's own words) is not a page and is left out; a text
    without markers gives no pages. `split_pages(join_pages(p)) == p` for pages whose texts have
    no trailing whitespace and no marker lines of their own.
    """
    marks = list(_MARKER_LINE.finditer(text))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end() : end]
        body = body[1:] if body.startswith("\n") else body
        if i + 1 < len(marks):
            # the blank line that separates this page from the next marker
            body = body[:-2] if body.endswith("\n\n") else body.rstrip("\n")
        out.append((int(m.group(1)), body))
    return out


def describe_pages(pages: Sequence[int]) -> str:
    """Page numbers as the shortest selection that names them: [1, 2, 3, 5] -> `1-3,5`."""
    parts: list[str] = []
    start = prev = None
    for n in pages:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(f"{start}-{prev}" if start != prev else str(start))
        start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(parts)


@dataclass(frozen=True)
class PageSelection:
    """Which pages of a document are read: `all`, or 1-based ranges in the order written."""

    #: (first, last) ranges, both included; empty means every page
    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, spec: str | int) -> PageSelection:
        """`all`, `3`, `1-3`, `2,5-7`. ValueError says what is wrong with any other text."""
        text = str(spec).strip()
        if text.lower() == "all":
            return cls()
        if not text:
            raise ValueError("an empty page selection; write e.g. 1-3, 2,5-7 or all")
        ranges = []
        for part in text.split(","):
            m = _RANGE.match(part)
            if m is None:
                raise ValueError(
                    f"{part.strip()!r} is not a page or a range of pages; "
                    "write e.g. 1-3, 2,5-7 or all (pages count from 1)"
                )
            first = int(m.group(1))
            last = int(m.group(2) or first)
            if last < first:
                raise ValueError(f"{part.strip()!r} runs backwards; write {last}-{first}")
            ranges.append((first, last))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        if not self.ranges:
            return "all"
        return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in self.ranges)

    @property
    def last(self) -> int:
        """The highest page named (0 for `all`)."""
        return max((last for _, last in self.ranges), default=0)

    def resolve(self, count: int) -> list[int]:
        """The selected page numbers of a document of `count` pages, in order and without
        repeats. ValueError names the first page beyond the document."""
        if not self.ranges:
            return list(range(1, count + 1))
        if self.last > count:
            raise ValueError(f"page {self.last} is beyond the document's {_pages(count)}")
        seen: dict[int, None] = {}
        for first, last in self.ranges:
            seen.update(dict.fromkeys(range(first, last + 1)))
        return list(seen)


def _pages(count: int) -> str:
    return "1 page" if count == 1 else f"{count} pages"
