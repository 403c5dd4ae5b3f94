"""prompt.documents: PDFs read as text with page markers, as page images, or both.

The PDFs are written by data/make_pdfs.py's `pdf_bytes` (fpdf2, a real text layer) and read by
PDFium; runs go over real HTTP to the test server, which records the bodies it was sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import importlib.util
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

import extract
from extract.config import load_pipeline
from extract.documents.pages import (
    PAGE_MARKER,
    PageSelection,
    describe_pages,
    join_pages,
    split_pages,
)
from extract.errors import ConfigError
from extract.pipeline import prepare
from extract.providers.testserver import ServerThread

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-secret"

_spec = importlib.util.spec_from_file_location("make_pdfs", ROOT / "data" / "make_pdfs.py")
assert _spec is not None and _spec.loader is not None
make_pdfs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_pdfs)


def pdf(pages: Sequence[Sequence[str]], **kw: Any) -> bytes:
    data: bytes = make_pdfs.pdf_bytes(pages, **kw)
    return data


SCHEMA = '''
from pydantic import BaseModel

class Doc(BaseModel):
    """What the document says."""
    title: str
    total: float | None
'''

PIPELINE = """\
name: docs
source: {{type: csv, path: in.csv, key: id}}
schema: doc.py:Doc
prompt:
  system: Read the document.
  user: "Document {{id}}:\\n{{doc}}"
  documents: {documents}
  document_defaults: {defaults}
model:
  base_url: {base_url}
  api_key_env: TEST_EXTRACT_KEY
run: {{concurrency: 2, max_attempts: 1, max_retries: 0}}
output: {{type: duckdb, path: out.duckdb, table: docs}}
"""


def setup(
    tmp_path: Path,
    server: ServerThread,
    files: dict[str, bytes | str],
    *,
    documents: str = "[doc]",
    defaults: str = "{}",
    rows: list[tuple[int, str]] | None = None,
) -> Path:
    """A pipeline over `files` (name -> PDF bytes, or text for a file that is no PDF): one row
    per file, in order, unless `rows` says otherwise."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "doc.py").write_text(SCHEMA)
    for name, data in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    rows = rows or [(i, name) for i, name in enumerate(files, start=1)]
    (tmp_path / "in.csv").write_text("id,doc\n" + "".join(f"{i},{n}\n" for i, n in rows))
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE.format(documents=documents, defaults=defaults, base_url=server.base_url))
    return p


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EXTRACT_KEY", KEY)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def user_content(body: dict[str, Any]) -> Any:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def png_size(url: str) -> tuple[int, int]:
    """(width, height) of a PNG data URL, after checking its chunks' CRCs and that its pixels
    decompress to exactly height rows of RGB."""
    data = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, i = {}, 8
    while i < len(data):
        (size,) = struct.unpack(">I", data[i : i + 4])
        kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + size]
        assert struct.unpack(">I", data[i + 8 + size : i + 12 + size])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        i += 12 + size
    assert list(chunks) == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 2)  # 8-bit RGB
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)
    return width, height


THREE = [["Alpha invoice", "Total 10.50"], ["Beta page"], ["Gamma page", "Signed"]]


# ------------------------------------------------------------------ pages and markers


def test_page_selections_parse_resolve_and_describe() -> None:
    assert PageSelection.parse("2,5-7").resolve(8) == [2, 5, 6, 7]
    assert PageSelection.parse(" 3 - 4 , 1 ").resolve(4) == [3, 4, 1]
    assert PageSelection.parse("1-3,2-4").resolve(4) == [1, 2, 3, 4]
    assert PageSelection.parse("all").resolve(3) == [1, 2, 3]
    assert PageSelection.parse(2).resolve(2) == [2]
    assert str(PageSelection.parse(" 1 - 3 ,5")) == "1-3,5"
    assert PageSelection.parse("2,5-7").last == 7
    assert describe_pages([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert describe_pages([4]) == "4"
    with pytest.raises(ValueError) as e:
        PageSelection.parse("3-1")
    assert str(e.value) == "'3-1' runs backwards; write 1-3"
    with pytest.raises(ValueError) as e:
        PageSelection.parse("1,x")
    assert str(e.value) == (
        "'x' is not a page or a range of pages; write e.g. 1-3, 2,5-7 or all (pages count from 1)"
    )
    with pytest.raises(ValueError) as e:
        PageSelection.parse("0-2")
    assert str(e.value).startswith("'0-2' is not a page or a range of pages")
    with pytest.raises(ValueError) as e:
        PageSelection.parse("2-5").resolve(3)
    assert str(e.value) == "page 5 is beyond the document's 3 pages"


def test_page_markers_are_written_and_read_back_exactly() -> None:
    assert PAGE_MARKER.format(n=3) == "--- page 3 ---"
    text = join_pages([(2, "two\nlines  "), (5, ""), (9, "last")])
    assert text == "--- page 2 ---\ntwo\nlines\n\n--- page 5 ---\n\n\n--- page 9 ---\nlast"
    assert split_pages(text) == [(2, "two\nlines"), (5, ""), (9, "last")]
    assert split_pages("Invoice:\n" + text + "\nThanks") == [
        (2, "two\nlines"),
        (5, ""),
        (9, "last\nThanks"),
    ]
    assert split_pages("no markers here") == []


# ------------------------------------------------------------------ text, images, both


def test_text_mode_puts_the_selected_pages_with_markers_where_the_template_says(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    server.configure(record_bodies=True)
    p = setup(tmp_path, server, {"a.pdf": pdf(THREE)}, documents='[{column: doc, pages: "1,3"}]')
    s = extract.run_pipeline(p)
    assert (s.rows_ok, s.rows_failed, s.requests) == (1, 0, 1)
    [body] = server.bodies()
    assert user_content(body) == (
        "Document 1:\n--- page 1 ---\nAlpha invoice\nTotal 10.50\n\n"
        "--- page 3 ---\nGamma page\nSigned"
    )
    db = tmp_path / "out.duckdb"
    assert query(db, "select id, _pages from docs") == [(1, "doc:1,3")]
    # the values are grounded in the document's text, under its column
    [(grounding,)] = query(db, "select _grounding from docs")
    found = [g for g in grounding.values() if g is not None and g["status"] != "none"]
    assert all(g["column"] == "doc" for g in found)


def test_images_mode_sends_the_pages_as_png_parts_after_the_text(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    from extract.documents import pdf as pdfmod

    server.configure(record_bodies=True)
    data = pdf(THREE)
    p = setup(
        tmp_path,
        server,
        {"scans/a.pdf": data},
        documents='[{column: doc, as: images, pages: "2-3", dpi: 50}]',
    )
    s = extract.run_pipeline(p)
    assert (s.rows_ok, s.rows_failed) == (1, 0)
    [body] = server.bodies()
    content = user_content(body)
    # the template shows the path as given; the pages follow as images, in order
    assert content[0] == {"type": "text", "text": "Document 1:\nscans/a.pdf"}
    urls = [part["image_url"]["url"] for part in content[1:]]
    assert [part["type"] for part in content[1:]] == ["image_url", "image_url"]
    with pdfmod.open_pdf(data, "a.pdf") as doc:
        expected = [pdfmod.render_png(doc, n, 50) for n in (2, 3)]
    assert [base64.b64decode(u.split(",", 1)[1]) for u in urls] == expected
    # A4 at 50 dpi: 595.28 x 841.89 points of 1/72 inch, rounded up
    assert [png_size(u) for u in urls] == [(414, 585), (414, 585)]
    assert query(tmp_path / "out.duckdb", "select _pages from docs") == [("doc:2-3",)]


def test_both_sends_the_text_and_the_images(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    server.configure(record_bodies=True)
    p = setup(
        tmp_path, server, {"a.pdf": pdf(THREE[:2])}, defaults="{as: both, pages: '2', dpi: 40}"
    )
    assert extract.run_pipeline(p).rows_ok == 1
    [body] = server.bodies()
    content = user_content(body)
    assert content[0] == {"type": "text", "text": "Document 1:\n--- page 2 ---\nBeta page"}
    assert [png_size(part["image_url"]["url"]) for part in content[1:]] == [(331, 468)]


def test_a_fifty_page_pdf_is_read_whole_and_by_range(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    server.configure(record_bodies=True)
    pages = [[f"Page {n} of 50", f"Line item {n}: {n * 3}.00 EUR"] for n in range(1, 51)]
    files = {"long.pdf": pdf(pages)}
    rows = [(1, "long.pdf")]
    p = setup(tmp_path, server, files, rows=rows)
    assert extract.run_pipeline(p).rows_ok == 1
    p2 = setup(tmp_path / "b", server, files, rows=rows, defaults="{pages: '48-50'}")
    assert extract.run_pipeline(p2).rows_ok == 1
    whole, tail = (user_content(b).removeprefix("Document 1:\n") for b in server.bodies())
    expected = [(n, f"Page {n} of 50\nLine item {n}: {n * 3}.00 EUR") for n in range(1, 51)]
    assert split_pages(whole) == expected
    assert whole == join_pages(expected)
    assert split_pages(tail) == expected[47:]
    assert query(tmp_path / "out.duckdb", "select _pages from docs") == [("doc:1-50",)]
    assert query(tmp_path / "b" / "out.duckdb", "select _pages from docs") == [("doc:48-50",)]


# ------------------------------------------------------------------ bad documents


def test_each_bad_document_is_its_rows_error_with_a_clear_message(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    two = [["Good one", "Total 1.00"], ["Second page"]]
    files: dict[str, bytes | str] = {
        "good.pdf": pdf(two),
        "notes.pdf": "just some text, no PDF at all\n",
        "broken.pdf": b"%PDF-1.7\n" + b"this is not a body\n" * 20,
        "locked.pdf": pdf(two, password="s3cret"),
        "short.pdf": pdf([["Only one page"]]),
        "scan.pdf": pdf([[], []]),
        "folder.pdf/inner.txt": "a directory named like a PDF",
    }
    rows = [
        (1, "good.pdf"),
        (2, "missing.pdf"),
        (3, "notes.pdf"),
        (4, "broken.pdf"),
        (5, "locked.pdf"),
        (6, "short.pdf"),
        (7, "scan.pdf"),
        (8, "folder.pdf"),
    ]
    p = setup(tmp_path, server, files, rows=rows, defaults="{pages: '1-2'}")
    s = extract.run_pipeline(p)
    assert (s.rows_ok, s.rows_failed, s.requests) == (1, 7, 1)
    db = tmp_path / "out.duckdb"
    assert query(db, "select id, _pages from docs") == [(1, "doc:1-2")]
    assert query(db, "select id, _error_class, _message, _pages from docs_errors order by id") == [
        (2, "DocumentError", "row 2: document column 'doc': cannot read missing.pdf "
         "(No such file or directory)", None),
        (3, "DocumentError", "row 3: document column 'doc': notes.pdf is not a PDF "
         "(it has no %PDF- header)", None),
        (4, "DocumentError", "row 4: document column 'doc': broken.pdf is a broken PDF "
         "(data format error)", None),
        (5, "DocumentError", "row 5: document column 'doc': locked.pdf is encrypted "
         "(it needs a password); decrypt it first", None),
        (6, "DocumentError", "row 6: document column 'doc': pages 1-2 are outside short.pdf, "
         "which has 1 page", None),
        (7, "DocumentError", "row 7: document column 'doc': scan.pdf has no text layer; "
         "use as: images", None),
        (8, "DocumentError", "row 8: document column 'doc': cannot read folder.pdf "
         "(Is a directory)", None),
    ]  # fmt: skip


def test_a_scan_without_text_is_fine_as_images(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    p = setup(tmp_path, server, {"scan.pdf": pdf([[]])}, defaults="{as: images, dpi: 36}")
    assert (
        extract.run_pipeline(p).rows_ok,
        query(tmp_path / "out.duckdb", "select _pages from docs"),
    ) == (1, [("doc:1",)])


# ------------------------------------------------------------------ URLs and bytes


@pytest.fixture
def pdf_site(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(site), **kw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_documents_by_url_and_as_bytes(
    tmp_path: Path, server: ServerThread, key: None, pdf_site: str
) -> None:
    server.configure(record_bodies=True)
    (tmp_path / "site" / "a.pdf").write_bytes(pdf([["From the web"]]))
    rows = [(1, f"{pdf_site}/a.pdf"), (2, f"{pdf_site}/gone.pdf?token=abc123")]
    p = setup(tmp_path, server, {}, rows=rows)
    s = extract.run_pipeline(p)
    assert (s.rows_ok, s.rows_failed) == (1, 1)
    assert [user_content(b) for b in server.bodies()] == [
        "Document 1:\n--- page 1 ---\nFrom the web"
    ]
    # the query string (a signed URL's token) stays out of the errors table
    assert query(tmp_path / "out.duckdb", "select id, _message from docs_errors") == [
        (2, f"row 2: document column 'doc': cannot fetch {pdf_site}/gone.pdf?… (HTTP 404)")
    ]

    server.reset()
    blob = pdf([["Held in a BLOB"], ["Page two"]])
    s = extract.run_pipeline(
        p,
        {"output.path": str(tmp_path / "bytes.duckdb")},
        source=[{"id": 1, "doc": blob}, {"id": 2, "doc": b"not a pdf"}, {"id": 3, "doc": None}],
    )
    assert (s.rows_ok, s.rows_failed) == (2, 1)
    assert [user_content(b) for b in server.bodies()] == [
        "Document 1:\n--- page 1 ---\nHeld in a BLOB\n\n--- page 2 ---\nPage two",
        "Document 3:\n",
    ]
    db = tmp_path / "bytes.duckdb"
    assert query(db, "select id, _pages from docs order by id") == [(1, "doc:1-2"), (3, None)]
    assert query(db, "select id, _message from docs_errors") == [
        (2, "row 2: document column 'doc': <bytes> is not a PDF (it has no %PDF- header)")
    ]


# ------------------------------------------------------------------ hashes


def request_hashes(p: Path, overrides: dict[str, Any] | None = None) -> list[str | None]:
    with prepare(load_pipeline(p, overrides or {})) as pipeline:
        return [r.request_hash for batch in pipeline.rows() for r in batch]


def test_the_request_hash_follows_the_bytes_pages_and_options(
    tmp_path: Path, server: ServerThread
) -> None:
    # the same text, written on another day: other bytes
    files = {"a.pdf": pdf(THREE), "b.pdf": pdf(THREE, created=dt.datetime(2025, 6, 1))}
    assert files["a.pdf"] != files["b.pdf"]
    p = setup(tmp_path, server, files)
    h = request_hashes(p)
    assert h[0] is not None and h[1] is not None and h[0] != h[1]  # same text, other bytes
    assert request_hashes(p) == h  # stable
    # the pages sent count, not how they were written: 1-3 of a 3-page PDF is all of it
    assert request_hashes(p, {"prompt.document_defaults.pages": "1-3"}) == h
    first_two = request_hashes(p, {"prompt.document_defaults.pages": "1-2"})
    assert first_two[0] not in h
    assert request_hashes(p, {"prompt.document_defaults.pages": "2,1"})[0] not in (
        h[0],
        first_two[0],
    )
    # dpi shapes only the images: in text mode it sends the same request
    assert request_hashes(p, {"prompt.document_defaults.dpi": 150}) == h
    images = request_hashes(p, {"prompt.document_defaults.as": "images"})
    assert images[0] != h[0]
    dpi = request_hashes(
        p, {"prompt.document_defaults.as": "images", "prompt.document_defaults.dpi": 60}
    )
    assert dpi[0] != images[0]


# ------------------------------------------------------------------ the pipeline file


@pytest.mark.parametrize(
    ("documents", "defaults", "message"),
    [
        ("[nope]", "{}",
         "p.yaml:prompt.documents: unknown column(s) 'nope'; the source has: id, doc"),
        ("[doc, doc]", "{}", "p.yaml:prompt: Value error, documents: column(s) 'doc' listed twice"),
        ("[{column: doc, pages: '4-2'}]", "{}",
         "p.yaml:prompt.documents.0.pages: Value error, '4-2' runs backwards; write 2-4"),
        ("[{column: doc, as: pictures}]", "{}",
         "p.yaml:prompt.documents.0.as: Input should be 'text', 'images' or 'both'"),
        ("[doc]", "{dpi: 10}",
         "p.yaml:prompt.document_defaults.dpi: Input should be greater than or equal to 36"),
        ("[{column: doc, size: 3}]", "{}",
         "p.yaml:prompt.documents.0.size: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_documents_config_is_a_clear_error(
    tmp_path: Path, server: ServerThread, documents: str, defaults: str, message: str
) -> None:
    p = setup(tmp_path, server, {}, rows=[(1, "a.pdf")], documents=documents, defaults=defaults)
    with pytest.raises(ConfigError) as e:
        prepare(load_pipeline(p)).close()
    assert str(e.value).replace(str(p), "p.yaml") == message


def test_a_text_document_the_template_does_not_name_is_an_error(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, {}, rows=[(1, "a.pdf")])
    p.write_text(p.read_text().replace('"Document {id}:\\n{doc}"', '"Document {id}"'))
    with pytest.raises(ConfigError) as e:
        prepare(load_pipeline(p)).close()
    assert str(e.value) == (
        f"{p}:prompt.documents: 'doc' is read as text but no template names {{doc}}; put it "
        "where the document's text belongs, or use as: images"
    )
    # as images, the template need not name it
    assert prepare(load_pipeline(p, {"prompt.document_defaults.as": "images"})).close() is None


def test_a_pipeline_without_documents_does_not_load_pdfium(tmp_path: Path) -> None:
    code = (
        "import sys, extract\n"
        "from extract.config import load_pipeline\n"
        "from extract.pipeline import prepare\n"
        f"prepare(load_pipeline({str(ROOT / 'pipelines' / 'tickets.yaml')!r})).close()\n"
        "print('pypdfium2' in sys.modules)\n"
    )
    env = {**os.environ, "OPENROUTER_API_KEY": "unused"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert (r.returncode, r.stdout) == (0, "False\n"), r.stderr


# ------------------------------------------------------------------ the shipped example


def shipped(server: ServerThread, tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "model.provider": "openai",
        "model.base_url": server.base_url,
        "model.api_key_env": "TEST_EXTRACT_KEY",
        "output.path": str(tmp_path / "invoices.duckdb"),
        **more,
    }


def test_the_shipped_invoice_pdfs_as_text_and_as_images(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    import csv

    with (ROOT / "data" / "labels" / "invoice_pdfs.csv").open(encoding="utf-8") as f:
        labels = {int(r["id"]): r for r in csv.DictReader(f)}
    two_pages = {2, 4, 6}  # data/make_pdfs.py puts the items of every second invoice on page 2
    server.configure(record_bodies=True)
    pipeline = ROOT / "pipelines" / "invoice_pdfs.yaml"
    s = extract.run_pipeline(pipeline, shipped(server, tmp_path))
    assert (s.rows_ok, s.rows_failed, s.requests) == (6, 0, 6)
    texts = [user_content(b) for b in server.bodies()]
    by_number = {t.split("Invoice number: ")[1].split("\n")[0]: t for t in texts}
    for i, label in labels.items():
        text = by_number[label["invoice_number"]]
        pages = split_pages(text)
        assert [n for n, _ in pages] == ([1, 2] if i in two_pages else [1])
        assert pages[0][1].startswith(f"{label['vendor']}\n")
        assert f"Invoice date: {label['invoice_date']}" in pages[0][1]
        assert f"Total due: {label['total']} {label['currency']}" in pages[-1][1]
    db = tmp_path / "invoices.duckdb"
    assert query(db, "select id, _pages from invoice_pdfs order by id") == [
        (i, "pdf:1-2" if i in two_pages else "pdf:1") for i in range(1, 7)
    ]

    server.reset()
    overrides = shipped(server, tmp_path / "img", **{"prompt.document_defaults.as": "images"})
    s = extract.run_pipeline(pipeline, overrides)
    assert (s.rows_ok, s.rows_failed, s.requests) == (6, 0, 6)
    contents = [user_content(b) for b in server.bodies()]
    assert sorted(c[0]["text"] for c in contents) == [
        f"Invoice:\npdfs/inv-{i}.pdf\n" for i in range(1, 7)
    ]
    for c in contents:
        i = int(c[0]["text"].split("inv-")[1].split(".")[0])
        sizes = [png_size(part["image_url"]["url"]) for part in c[1:]]
        assert sizes == [(827, 1170)] * (2 if i in two_pages else 1)  # A4 at 100 dpi


def test_a_table_written_before_documents_gains_pages_in_place(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    p = setup(tmp_path, server, {"a.pdf": pdf(THREE), "b.pdf": pdf(THREE[:1])})
    assert extract.run_pipeline(p).rows_ok == 2
    db = tmp_path / "out.duckdb"
    con = duckdb.connect(str(db))
    try:
        # as a version before `_pages` (and `_parts`) wrote them, with one row answered then
        for table in ("docs", "docs_errors"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN _pages")
            con.execute(f"ALTER TABLE {table} DROP COLUMN _parts")
        con.execute("DELETE FROM docs WHERE id = 2")
    finally:
        con.close()
    s = extract.run_pipeline(p)
    assert (s.rows_ok, s.rows_skipped, s.rows_cached) == (0, 1, 1)
    columns = [r[0] for r in query(db, "select column_name from (describe docs)")]
    assert columns[-3:] == ["_system_fingerprint", "_pages", "_parts"]
    assert query(db, "select id, _pages from docs order by id") == [(1, None), (2, "doc:1")]
    errors = [r[0] for r in query(db, "select column_name from (describe docs_errors)")]
    assert errors[-2:] == ["_pages", "_parts"]


# ------------------------------------------------------------------ on the local model


@pytest.mark.local
@pytest.mark.slow
def test_the_shipped_invoice_pdfs_on_the_local_model(tmp_path: Path) -> None:
    """pipelines/invoice_pdfs.yaml as it stands, two rows (one PDF of one page, one of two) on
    the bundled Qwen2.5-Coder-1.5B: the invoice number and the vendor, printed on the PDFs'
    first lines, are copied exactly (the 1.5B model is reliable at copying, not at sums)."""
    import csv

    import extract.providers.local as local

    if local.prepared() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but the local model is not prepared; run make local")
        pytest.skip("the local model is not prepared; run: make local")
    db = tmp_path / "invoices.duckdb"
    r = subprocess.run(
        [
            str(Path(sys.executable).parent / "extract"),
            "run",
            str(ROOT / "pipelines" / "invoice_pdfs.yaml"),
            "--limit",
            "2",
            "--set",
            f"output.path={db}",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    with (ROOT / "data" / "labels" / "invoice_pdfs.csv").open(encoding="utf-8") as f:
        labels = {int(row["id"]): row for row in csv.DictReader(f)}
    got = query(db, "select id, invoice_number, vendor, _pages from invoice_pdfs order by id")
    assert got == [
        (i, labels[i]["invoice_number"], labels[i]["vendor"], page) for i, page in
        ((1, "pdf:1"), (2, "pdf:1-2"))
    ]  # fmt: skip
    grounded = query(
        db, "select _grounding.invoice_number.status, _grounding.invoice_number.column "
        "from invoice_pdfs order by id"
    )  # fmt: skip
    assert grounded == [("exact", "pdf"), ("exact", "pdf")]


def test_a_huge_page_is_rendered_within_the_pixel_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from extract.documents import pdf as pdfmod

    monkeypatch.setattr(pdfmod, "MAX_PIXELS", 100_000)
    with pdfmod.open_pdf(pdf(THREE[:1]), "a.pdf") as doc:
        png = pdfmod.render_png(doc, 1, 600)
    w, h = png_size("data:image/png;base64," + base64.b64encode(png).decode())
    # A4 at 600 dpi would be 4961 x 7016; the cap keeps its shape at about 100,000 pixels
    assert (w, h) == (266, 377)


def test_a_long_pdf_is_split_at_its_pages_and_merged(
    tmp_path: Path, server: ServerThread, key: None
) -> None:
    # six pages of filler, the title on page 1 and the total on page 5: over the input limit,
    # the document's text is cut at its page markers and each part keeps whole pages
    filler = [f"Line {n} of the terms and conditions, kept for the record." for n in range(6)]
    pages = [[*filler] for _ in range(6)]
    pages[0].insert(0, '@title: "Alpha invoice"')
    pages[4].insert(0, "@total: 42.5")
    p = setup(tmp_path, server, {"long.pdf": pdf(pages)})
    server.configure(answer_from_text=True, record_bodies=True)
    s = extract.run_pipeline(p, {"model.max_input_tokens": 400})
    assert (s.rows_ok, s.rows_failed) == (1, 0)
    [(title, total, parts, sent)] = query(
        tmp_path / "out.duckdb", "select title, total, _parts, _pages from docs"
    )
    assert (title, total, sent) == ("Alpha invoice", 42.5, "doc:1-6")
    assert parts == s.requests > 1
    seen: list[int] = []
    for body in server.bodies():
        text = user_content(body).split("\n", 1)[1]
        assert text.startswith("--- page ")  # a part begins at a page, never inside one
        numbers = [n for n, _ in split_pages(text)]
        assert numbers == list(range(numbers[0], numbers[-1] + 1))
        seen.extend(numbers)
    assert sorted(set(seen)) == [1, 2, 3, 4, 5, 6]
