"""PDF files through PDFium: open, read the text layer of pages, render pages to PNG.

pypdfium2 (Google's PDFium, the engine of Chrome's PDF viewer) ships as self-contained wheels
for every major platform: no system library, no Poppler or Ghostscript to install, and both the
text layer and rendering from one well-kept engine. It is imported here only, and this module
only when a pipeline has `prompt.documents`.

Every failure is a DocumentError carrying only its reason; the caller adds the row and column.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pypdfium2 as pdfium

from ..errors import DocumentError

__all__ = ["open_pdf", "page_count", "page_texts", "render_png"]

#: a PDF's header may follow a little junk (the spec lets readers look in the first 1024 bytes)
_HEADER_WINDOW = 1024
#: PDFium's error code for a document that needs a password (FPDF_ERR_PASSWORD)
_ERR_PASSWORD = 4
_PDFIUM_REASON = re.compile(r"\(PDFium: (.+?)\)")


@contextmanager
def open_pdf(data: bytes, label: str) -> Iterator[pdfium.PdfDocument]:
    """The PDF in `data`, closed on exit. `label` names it in errors (a path, URL or <bytes>)."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise DocumentError(f"{label} is not a PDF (it has no %PDF- header)", source=label)
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if getattr(e, "err_code", None) == _ERR_PASSWORD:
            raise DocumentError(
                f"{label} is encrypted (it needs a password); decrypt it first", source=label
            ) from e
        m = _PDFIUM_REASON.search(str(e))
        reason = m.group(1).lower() if m else str(e)
        raise DocumentError(f"{label} is a broken PDF ({reason})", source=label) from e
    try:
        yield pdf
    finally:
        pdf.close()


def page_count(pdf: pdfium.PdfDocument) -> int:
    """How many pages the document has."""
    return len(pdf)


def page_texts(pdf: pdfium.PdfDocument, pages: Sequence[int]) -> list[str]:
    """The text layer of each 1-based page in `pages`, with plain newlines, trailing space cut."""
    out = []
    for n in pages:
        page = pdf[n - 1]
        try:
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
            finally:
                textpage.close()
        finally:
            page.close()
        # PDFium ends lines with \r\n; a form feed or NUL is noise to a language model
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        out.append("\n".join(line.rstrip() for line in text.split("\n")).strip("\n"))
    return out


#: a page image has at most this many pixels: an A0 poster at 600 dpi would otherwise take
#: 1.6 GB of memory; a vision model scales a page down to far less anyway
MAX_PIXELS = 40_000_000


def render_png(pdf: pdfium.PdfDocument, n: int, dpi: int) -> bytes:
    """Page `n` (1-based) rendered at `dpi` as PNG bytes (RGB); a page that would exceed
    MAX_PIXELS is rendered at the highest resolution that stays within it."""
    page = pdf[n - 1]
    try:
        width, height = page.get_size()  # in points, 1/72 inch
        scale = min(dpi / 72, (MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            return _png(
                bitmap.width, bitmap.height, bitmap.n_channels, bitmap.stride, bitmap.buffer
            )
        finally:
            bitmap.close()
    finally:
        page.close()


_COLOR_TYPE = {1: 0, 3: 2, 4: 6}  # grey, RGB, RGBA
#: compression dominates a page's cost (PDFium renders an A4 page at 100 dpi in ~3 ms): level 3
#: compresses in a third of level 6's time for files about a third larger
_ZLIB_LEVEL = 3


def _png(width: int, height: int, channels: int, stride: int, buffer: object) -> bytes:
    # PNG by hand (zlib and struct): PIL would be a dependency for these twenty lines
    view = memoryview(buffer).cast("B")  # type: ignore[arg-type]
    row = width * channels
    raw = bytearray()
    for y in range(height):
        raw += b"\x00"  # filter type 0 (none): zlib does the work, and quickly
        raw += view[y * stride : y * stride + row]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(bytes(raw), _ZLIB_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
