"""Render a row into chat messages: `{column}` placeholders, plus image parts for vision models.

Templates are parsed once into literal and column pieces, so rendering a row is a join, not a
format-string parse. A placeholder naming a column the source lacks is a ConfigError that lists the
columns. Local image files become base64 data URLs (their bytes count in the prompt hash);
http(s) and data URLs pass through. A missing or unreadable image is that row's RowInputError.
Document columns (`prompt.documents`, extract/documents/) put a PDF's text layer where the
template names the column and its page images after the text; a bad document is that row's
DocumentError.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .config import PromptConfig
from .errors import ConfigError, DocumentError, RowInputError

if TYPE_CHECKING:
    from .documents.read import DocumentReader, ReadDocument

__all__ = ["Prompt", "Rendered", "Template", "fingerprint"]

Message = dict[str, Any]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _image_mime(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and the column names between them."""

    source: str
    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str, where: str) -> Template:
        pieces: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as e:
            raise ConfigError(f"{where}: bad template: {e} (write {{{{ and }}}} for braces)") from e
        for literal, field, spec, conversion in parsed:
            if field is not None and (spec or conversion or not field.isidentifier()):
                raise ConfigError(
                    f"{where}: placeholder {{{field}}} must be a plain column name "
                    "(write {{ and }} for literal braces)"
                )
            pieces.append((literal, field))
        return cls(text, tuple(pieces))

    @property
    def fields(self) -> list[str]:
        return [f for _, f in self.pieces if f is not None]

    def render(self, row: dict[str, Any]) -> str:
        out: list[str] = []
        for literal, field in self.pieces:
            out.append(literal)
            if field is not None:
                out.append(_text(row.get(field)))
        return "".join(out)


@dataclass(frozen=True)
class Rendered:
    """One row rendered: its messages, the text its values are grounded in, and what its
    documents add (the pages sent, and a digest of their bytes and options for the hashes)."""

    messages: list[Message]
    texts: dict[str, str]
    #: the `_pages` provenance: `column:pages` per document sent, `; `-joined (None: none)
    pages: str | None = None
    #: the documents' digests, hashed with the messages (b"": no documents)
    inputs: bytes = b""
    #: the row as the templates saw it (a document column holds its text) and the image URLs
    #: sent after the text: what `Prompt.compose` renders a part of a split row from
    view: dict[str, Any] = dataclasses.field(default_factory=dict)
    urls: list[str] = dataclasses.field(default_factory=list)


class Prompt:
    """The compiled prompt of a pipeline: `render(row, key)` builds one request's messages."""

    def __init__(self, config: PromptConfig, *, columns: list[str], where: str, image_base: Path):
        self.system = (
            Template.parse(config.system, f"{where}:prompt.system") if config.system else None
        )
        self.user = Template.parse(config.user, f"{where}:prompt.user")
        seen: dict[str, None] = {}
        for template in (self.system, self.user):
            if template is not None:
                seen.update(dict.fromkeys(template.fields))
        #: the columns the templates put into the messages, in order of first use: the text a
        #: value is grounded in (worked out once: every row's render reads it)
        self.text_columns = list(seen)
        self.images = list(config.images)
        self.image_base = image_base
        known = set(columns)
        for name, template in (("system", self.system), ("user", self.user)):
            if template is None:
                continue
            missing = [f for f in template.fields if f not in known]
            if missing:
                raise ConfigError(
                    f"{where}:prompt.{name}: unknown column(s) {', '.join(map(repr, missing))}; "
                    f"the source has: {', '.join(columns)}"
                )
        missing = [c for c in self.images if c not in known]
        if missing:
            raise ConfigError(
                f"{where}:prompt.images: unknown column(s) {', '.join(map(repr, missing))}; "
                f"the source has: {', '.join(columns)}"
            )
        self.documents: DocumentReader | None = None
        if config.documents:
            self.documents = self._document_reader(config, known, columns, where, image_base)

    def _document_reader(
        self,
        config: PromptConfig,
        known: set[str],
        columns: list[str],
        where: str,
        base: Path,
    ) -> DocumentReader:
        from .documents.read import DocumentReader

        missing = [d.column for d in config.documents if d.column not in known]
        if missing:
            raise ConfigError(
                f"{where}:prompt.documents: unknown column(s) {', '.join(map(repr, missing))}; "
                f"the source has: {', '.join(columns)}"
            )
        reader = DocumentReader(config.documents, config.document_defaults, base)
        named = set(self.text_columns)
        for spec in reader.specs:
            if spec.sends_text and spec.column not in named:
                raise ConfigError(
                    f"{where}:prompt.documents: '{spec.column}' is read as {spec.mode} but no "
                    f"template names {{{spec.column}}}; put it where the document's text "
                    "belongs, or use as: images"
                )
        return reader

    @property
    def renders_pages(self) -> bool:
        """Whether rows carry document pages as images (large: rendered a few rows at a time)."""
        return self.documents is not None and any(s.sends_images for s in self.documents.specs)

    def texts(self, row: dict[str, Any]) -> dict[str, str]:
        """The row's values of `text_columns` as the model saw them (empty ones left out); a
        document's text layer for a document column (left out when it cannot be read)."""
        if self.documents is not None:
            try:
                docs = self.documents.read(row, None, images=False)
            except DocumentError:
                docs = []
            row = self._view(row, docs)
        return self._texts(row)

    def _texts(self, view: dict[str, Any]) -> dict[str, str]:
        out = {}
        for column in self.text_columns:
            text = _text(view.get(column))
            if text:
                out[column] = text
        return out

    def _view(self, row: dict[str, Any], docs: list[ReadDocument]) -> dict[str, Any]:
        """The row as the templates see it: a document column holds the document's text (text
        and both), or its path or URL as given (images; bytes are no text)."""
        assert self.documents is not None
        view = dict(row)
        for spec in self.documents.specs:
            value = view.get(spec.column)
            if spec.sends_text or isinstance(value, bytes | bytearray | memoryview):
                view[spec.column] = None
        for doc in docs:
            if doc.text is not None:
                view[doc.column] = doc.text
        return view

    def messages(self, row: dict[str, Any], key: Any) -> list[Message]:
        """The chat messages for one row. Raises RowInputError for an unusable image or
        document."""
        return self.render(row, key).messages

    def render(self, row: dict[str, Any], key: Any) -> Rendered:
        """The row's messages and grounding texts, with its documents read once for both.
        Raises RowInputError for an unusable image, DocumentError for an unusable document."""
        docs: list[ReadDocument] = []
        view = row
        if self.documents is not None:
            docs = self.documents.read(row, key)
            view = self._view(row, docs)
        found = [self._image_url(row.get(col), col, key) for col in self.images]
        urls = [u for u in found if u]
        for doc in docs:
            urls.extend(doc.images)
        out = self.compose(view, urls)
        if not docs:
            return Rendered(out, self._texts(view), view=view, urls=urls)
        return Rendered(
            out,
            self._texts(view),
            pages="; ".join(d.provenance for d in docs),
            inputs=b"".join(d.digest for d in docs),
            view=view,
            urls=urls,
        )

    def compose(self, view: dict[str, Any], urls: list[str]) -> list[Message]:
        """The messages of a row as the templates see it (`Rendered.view`), with the image
        URLs after the text."""
        out: list[Message] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system.render(view)})
        text = self.user.render(view)
        if urls:
            parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
            parts.extend({"type": "image_url", "image_url": {"url": u}} for u in urls)
            out.append({"role": "user", "content": parts})
        else:
            out.append({"role": "user", "content": text})
        return out

    def _image_url(self, value: Any, column: str, key: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        ref = str(value).strip()
        if ref.startswith(("http://", "https://", "data:image/")):
            return ref
        path = Path(ref)
        if not path.is_absolute():
            path = self.image_base / path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise RowInputError(
                f"image column '{column}': cannot read {ref} ({e.strerror})", row_key=key
            ) from e
        mime = _image_mime(data)
        if mime is None:
            raise RowInputError(
                f"image column '{column}': {ref} is not a png, jpeg, webp or gif image", row_key=key
            )
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def fingerprint(
    messages: list[Message], template_digest: bytes, inputs: bytes = b""
) -> tuple[str, str, int]:
    """(prompt hash, request hash, size in characters) of rendered messages.

    The prompt hash identifies the row's input (image bytes included through their data URLs);
    the request hash adds everything else that determines the answer (`template_digest`: model,
    schema, seed, sampling options) and keys the response cache. `inputs` (Rendered.inputs) adds
    the documents' bytes and page selections, which the messages alone may not reflect (a PDF
    whose text layer stayed the same while its pages changed). Raises RowInputError for text
    that is not valid Unicode.
    """
    # orjson writes the bytes that json.dumps(separators=(",", ":"), ensure_ascii=False,
    # sort_keys=True) wrote before it (tests/test_prompt.py checks), so the hashes, and the
    # cache keyed by them, stay what they were; it costs a tenth on the rerun's per-row path.
    try:
        text = orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as e:  # a lone surrogate in a str handed over from Python
        raise RowInputError(f"the prompt cannot be sent as UTF-8 JSON: {e}") from e
    blob = text + inputs
    return (
        hashlib.sha256(blob).hexdigest()[:16],
        hashlib.sha256(template_digest + blob).hexdigest()[:32],
        len(text.decode("utf-8")),
    )
