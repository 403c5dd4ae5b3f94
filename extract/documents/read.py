"""A row's documents: its value (a path, an http(s) URL or bytes) turned into what is sent.

For each column of `prompt.documents` the reader loads the PDF, resolves the page selection
against it and gives the text (page markers and all, for `as: text | both`) and the page images
(PNG data URLs, for `as: images | both`), the pages sent, and a digest of the bytes and options
for the request hash. Any failure is that row's DocumentError naming the row, column and file.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DocumentColumn, DocumentMode, DocumentOptions
from ..errors import DocumentError
from .pages import PageSelection, describe_pages, join_pages

__all__ = ["DocumentReader", "DocumentSpec", "ReadDocument"]

#: a document fetched from a URL is refused beyond this size (a runaway download, not a PDF)
MAX_URL_BYTES = 200_000_000
#: seconds to fetch a document from a URL
URL_TIMEOUT_S = 60


@dataclass(frozen=True)
class DocumentSpec:
    """One document column with its options settled (the column's own, else the defaults)."""

    column: str
    mode: DocumentMode
    pages: PageSelection
    dpi: int

    @classmethod
    def of(cls, column: DocumentColumn, defaults: DocumentOptions) -> DocumentSpec:
        pages = column.pages if column.pages is not None else defaults.pages
        return cls(
            column=column.column,
            mode=column.as_ or defaults.as_,
            pages=PageSelection.parse(pages),
            dpi=column.dpi or defaults.dpi,
        )

    @property
    def sends_text(self) -> bool:
        return self.mode in ("text", "both")

    @property
    def sends_images(self) -> bool:
        return self.mode in ("images", "both")


@dataclass(frozen=True)
class ReadDocument:
    """What one row's document contributes to its request."""

    column: str
    #: the text layer with page markers (as: text | both), else None
    text: str | None
    #: the selected pages as PNG data URLs (as: images | both)
    images: list[str]
    #: the 1-based page numbers sent
    pages: list[int]
    #: sha256 of the document's bytes and the options that shape what is sent
    digest: bytes

    @property
    def provenance(self) -> str:
        """`column:pages`, e.g. `invoice_pdf:1-3`: one entry of the `_pages` column."""
        return f"{self.column}:{describe_pages(self.pages)}"


class DocumentReader:
    """Reads the document columns of a row. `base` resolves relative paths (the source file's
    folder, as for prompt.images)."""

    def __init__(self, columns: list[DocumentColumn], defaults: DocumentOptions, base: Path):
        self.specs = [DocumentSpec.of(c, defaults) for c in columns]
        self.base = base
        # imported here: only a pipeline with documents loads PDFium
        from . import pdf

        self._pdf = pdf

    def read(self, row: dict[str, Any], key: Any, *, images: bool = True) -> list[ReadDocument]:
        """The row's documents in column order; an empty value (null, "", no bytes) is no
        document. `images=False` skips rendering (the grounding text of a review page).
        Raises DocumentError naming the row, the column and the file."""
        out = []
        for spec in self.specs:
            value = row.get(spec.column)
            if value is None or (isinstance(value, str | bytes) and not value.strip()):
                continue
            try:
                out.append(self._read_one(spec, value, images))
            except DocumentError as e:
                raise e.located(row_key=key, column=spec.column) from e
        return out

    def _read_one(self, spec: DocumentSpec, value: Any, images: bool) -> ReadDocument:
        data, label = self._load(value)
        pdf = self._pdf
        with pdf.open_pdf(data, label) as doc:
            count = pdf.page_count(doc)
            if spec.pages.last > count:
                raise DocumentError(
                    f"pages {spec.pages} are outside {label}, which has "
                    + ("1 page" if count == 1 else f"{count} pages"),
                    source=label,
                )
            pages = spec.pages.resolve(count)
            text = None
            if spec.sends_text:
                texts = pdf.page_texts(doc, pages)
                if spec.mode == "text" and not any(t.strip() for t in texts):
                    raise DocumentError(f"{label} has no text layer; use as: images", source=label)
                text = join_pages(zip(pages, texts, strict=True))
            urls = []
            if spec.sends_images and images:
                for n in pages:
                    png = pdf.render_png(doc, n, spec.dpi)
                    urls.append("data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        h = hashlib.sha256(data)
        # what is sent depends on the mode and pages, and the images on the dpi too: a dpi
        # change in text mode sends the same request, so it must not cost a new answer
        options = f"{spec.mode}|{describe_pages(pages)}|{spec.dpi if spec.sends_images else ''}"
        h.update(options.encode())
        return ReadDocument(spec.column, text, urls, pages, h.digest())

    def _load(self, value: Any) -> tuple[bytes, str]:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value), "<bytes>"
        ref = str(value).strip()
        if ref.startswith(("http://", "https://")):
            return _fetch(ref)
        path = Path(ref)
        if not path.is_absolute():
            path = self.base / path
        try:
            return path.read_bytes(), ref
        except OSError as e:
            raise DocumentError(f"cannot read {ref} ({e.strerror})", source=ref) from e


def _fetch(url: str) -> tuple[bytes, str]:
    # Named without its query string: a signed URL's token must not reach the errors table.
    parts = urllib.parse.urlsplit(url)
    label = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if parts.query:
        label += "?…"
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as reply:
            data: bytes = reply.read(MAX_URL_BYTES + 1)
    except urllib.error.HTTPError as e:
        e.close()  # it holds the connection open
        raise DocumentError(f"cannot fetch {label} (HTTP {e.code})", source=label) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise DocumentError(f"cannot fetch {label} ({reason})", source=label) from e
    if len(data) > MAX_URL_BYTES:
        raise DocumentError(f"{label} is larger than {MAX_URL_BYTES // 1_000_000} MB", source=label)
    return data, label
