"""`extract report`: the review page of a pipeline's output (extract/report/).

The output is real: a run through the library with the in-process FakeTransport over a CSV
source, then the trust columns set to known values (added first if this runner does not write
them) and the evaluation tables `extract eval` writes, filled by SQL. The assertions read the
page through a small DOM built with the standard library's HTML parser, so they see what a
browser sees (entities decoded, elements nested), not substrings of the markup.

Tests marked `browser` open the page in headless Chromium (Debian's `chromium`) and check what
it painted (pixels of the highlight and bar colours in a screenshot) and the DOM after the
inline script ran. They skip when Chromium is not installed, except under CI (`CI` set), where
.ci/run installs it and a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

import extract
from extract.config import load_pipeline
from extract.errors import ConfigError, SinkError
from extract.report import default_report_path, report_pipeline, write_report
from extract.report.assets import COLOURS
from extract.report.cards import marked_html
from extract.report.facts import Highlight
from extract.transport.fake import FakeTransport, Reply, chat_reply

SCHEMA = """\
from pydantic import BaseModel


class Company(BaseModel):
    name: str
    city: str | None


class Contact(BaseModel):
    name: str
    email: str | None
    company: Company | None
    tags: list[str]
    urgent: bool
"""

PIPELINE = """\
name: contacts
source: {type: csv, path: data.csv, key: id}
schema: m.py:Contact
prompt:
  system: Extract the sender of the message.
  user: "Subject: {subject}\\n{text}"
model: {provider: openai, name: fake-model, base_url: "http://127.0.0.1:9/v1", api_key_env: null,
        seed: 7, max_tokens: 100}
run: {concurrency: 2, max_attempts: 2, max_retries: 0, backoff_s: 0.001}
output: {type: duckdb, path: out/contacts.duckdb, table: contacts}
"""

SCRIPT_NAME = "<script>alert(1)</script> & Sons"

#: id -> (subject, text)
ROWS: dict[int, tuple[str, str]] = {
    1: ("Hello", "Ada Lovelace from Analytical Engines, London. Mail: ada@engines.example"),
    2: ("Quote request", "hi, this is grace hopper (Cobol Systems Inc) - need a quote by friday"),
    3: ("Invoice", "Please send the invoice to Alan. Thanks!"),
    4: ("<script>alert(1)</script>", f"From {SCRIPT_NAME} Ltd: urgent!"),
    5: ("Broken", "this row never gets a usable answer"),
    6: ("Babbage", "Charles Babbage, Babbage Ltd, Cambridge"),
}

#: the answers the fake model gives, by subject
ANSWERS: dict[str, dict[str, Any]] = {
    "Hello": {"name": "Ada Lovelace", "email": "ada@engines.example",
              "company": {"name": "Analytical Engines", "city": "London"},
              "tags": ["analytical"], "urgent": False},
    "Quote request": {"name": "Grace Hopper", "email": None,
                      "company": {"name": "COBOL Systems", "city": None},
                      "tags": [], "urgent": False},
    "Invoice": {"name": "Alan Turing", "email": "alan@bletchley.example", "company": None,
                "tags": [], "urgent": False},
    "<script>alert(1)</script>": {"name": SCRIPT_NAME, "email": None, "company": None,
                                  "tags": ["<script>alert(1)</script>"], "urgent": True},
    "Babbage": {"name": "Charles Babbage", "email": None,
                "company": {"name": "Babbage", "city": "Cambridge"}, "tags": [], "urgent": False},
}  # fmt: skip

#: the broken row's answer, every time: not JSON, with markup in it
RAW_BROKEN = "<b>not json</b> & more"

#: what the errors table says of it
BROKEN_MESSAGE = "the answer is not JSON"

#: the lowest confidence of each validated row (row 5 failed)
MIN_CONFIDENCE = {1: 0.97, 2: 0.42, 3: 0.91, 4: 0.55, 6: 0.88}


def found(status: str, column: str, rid: int, piece: str, nth: int = 0) -> dict[str, Any]:
    """A grounding leaf pointing at the `nth` occurrence of `piece` in row `rid`'s column."""
    text = ROWS[rid][0] if column == "subject" else ROWS[rid][1]
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return {"status": status, "column": column, "start": start, "end": start + len(piece)}


NOT_FOUND = {"status": "none", "column": None, "start": None, "end": None}


def grounding(rid: int) -> dict[str, Any]:
    """The `_grounding` value of each validated row: known spans, overlapping in row 6."""
    return {
        1: {"name": found("exact", "text", 1, "Ada Lovelace"),
            "email": found("exact", "text", 1, "ada@engines.example"),
            "company": {"name": found("exact", "text", 1, "Analytical Engines"),
                        "city": found("exact", "text", 1, "London")},
            "tags": [found("fuzzy", "text", 1, "Analytical")], "urgent": None},
        2: {"name": found("normalized", "text", 2, "grace hopper"), "email": None,
            "company": {"name": found("fuzzy", "text", 2, "Cobol Systems"), "city": None},
            "tags": [], "urgent": None},
        3: {"name": found("fuzzy", "text", 3, "Alan"), "email": NOT_FOUND, "company": None,
            "tags": [], "urgent": None},
        4: {"name": found("exact", "text", 4, SCRIPT_NAME), "email": None, "company": None,
            "tags": [found("exact", "subject", 4, "<script>alert(1)</script>")],
            "urgent": None},
        6: {"name": found("exact", "text", 6, "Charles Babbage"), "email": None,
            # inside the name's span: the two overlap
            "company": {"name": found("exact", "text", 6, "Babbage"),
                        "city": found("exact", "text", 6, "Cambridge")},
            "tags": [], "urgent": None},
    }[rid]  # fmt: skip


def confidence(rid: int) -> dict[str, Any]:
    """The `_confidence` value of each validated row; its minimum is MIN_CONFIDENCE[rid]."""
    low = MIN_CONFIDENCE[rid]
    answer = ANSWERS[ROWS[rid][0]]
    company = answer["company"]
    return {
        "name": low,
        "email": 0.99,
        "company": None if company is None else {"name": 0.98, "city": 0.99},
        "tags": [0.99 for _ in answer["tags"]],
        "urgent": 0.995,
    }


GROUNDING_LEAF = 'STRUCT(status VARCHAR, "column" VARCHAR, "start" INTEGER, "end" INTEGER)'
TRUST_DDL = {
    "_confidence": "STRUCT(name DOUBLE, email DOUBLE, company STRUCT(name DOUBLE, city DOUBLE), "
    "tags DOUBLE[], urgent DOUBLE)",
    "_min_confidence": "DOUBLE",
    "_margins": "MAP(VARCHAR, DOUBLE)",
    "_grounding": f"STRUCT(name {GROUNDING_LEAF}, email {GROUNDING_LEAF}, company STRUCT(name "
    f"{GROUNDING_LEAF}, city {GROUNDING_LEAF}), tags {GROUNDING_LEAF}[], urgent {GROUNDING_LEAF})",
    "_ungrounded": "INTEGER",
}

EVAL_DDL = (
    "evaluated_at TIMESTAMPTZ, run_id VARCHAR, labels VARCHAR, field VARCHAR, mode VARCHAR, "
    "n BIGINT, accuracy DOUBLE, precision DOUBLE, recall DOUBLE, f1 DOUBLE"
)
EVAL_ROWS_DDL = (
    "evaluated_at TIMESTAMPTZ, run_id VARCHAR, key VARCHAR, field VARCHAR, expected VARCHAR, "
    "actual VARCHAR, score DOUBLE, correct BOOLEAN, confidence DOUBLE, grounding VARCHAR"
)
OLD_EVAL = "2026-11-01 09:00:00+00"
NEW_EVAL = "2026-12-01 09:00:00+00"


def answer(request: dict[str, Any]) -> Reply:
    """The fake model: the row's answer by its subject (read from the first user message)."""
    subject = request["messages"][1]["content"].split("\n", 1)[0].removeprefix("Subject: ")
    if subject == "Broken":
        return chat_reply(RAW_BROKEN, cost=0.002)
    return chat_reply(json.dumps(ANSWERS[subject]), cost=0.001)


def write_project(folder: Path) -> Path:
    """The schema, the CSV source and the pipeline file in `folder`; the pipeline's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m.py").write_text(SCHEMA)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE rows (id BIGINT, subject VARCHAR, text VARCHAR)")
        con.executemany("INSERT INTO rows VALUES (?, ?, ?)", [(k, *v) for k, v in ROWS.items()])
        con.execute(f"COPY rows TO '{folder / 'data.csv'}' (HEADER, DELIMITER ',')")
    finally:
        con.close()
    path = folder / "p.yaml"
    path.write_text(PIPELINE)
    return path


def run(path: Path) -> str:
    """Run the pipeline with the fake model; the run's id."""
    summary = extract.run_pipeline(path, transport=FakeTransport(answer))
    assert (summary.rows_ok, summary.rows_failed) == (5, 1)
    return summary.run_id


def set_trust(db: Path) -> None:
    """The trust columns with the known values above (added when the runner did not)."""
    con = duckdb.connect(str(db))
    try:
        have = {r[0] for r in con.execute("DESCRIBE contacts").fetchall()}
        for name, kind in TRUST_DDL.items():
            if name not in have:
                con.execute(f"ALTER TABLE contacts ADD COLUMN {name} {kind}")
        for rid, low in MIN_CONFIDENCE.items():
            con.execute(
                "UPDATE contacts SET _confidence = ?, _min_confidence = ?, _grounding = ?, "
                "_ungrounded = ?, _margins = NULL WHERE id = ?",
                [confidence(rid), low, grounding(rid), 1 if rid == 3 else 0, rid],
            )
    finally:
        con.close()


def add_evaluations(db: Path, run_id: str) -> None:
    """An older evaluation (row 1's name wrong) and the latest one (rows 3 and 6 wrong)."""
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE TABLE contacts_eval ({EVAL_DDL})")
        con.execute(f"CREATE TABLE contacts_eval_rows ({EVAL_ROWS_DDL})")
        summary = [
            (OLD_EVAL, "name", "exact", 5, 0.2, None, None, None),
            (NEW_EVAL, "*", "exact", 15, 13 / 15, None, None, None),
            (NEW_EVAL, "name", "exact", 5, 1.0, None, None, None),
            (NEW_EVAL, "email", "exact", 5, 0.8, 0.5, 1.0, 2 / 3),
            (NEW_EVAL, "company.name", "fuzzy", 5, 0.8, None, None, None),
        ]
        con.executemany(
            "INSERT INTO contacts_eval VALUES (?, ?, 'labels.csv', ?, ?, ?, ?, ?, ?, ?)",
            [(at, run_id, *rest) for at, *rest in summary],
        )
        detail: list[tuple[Any, ...]] = [
            (OLD_EVAL, "1", "name", "Ada", "Ada Lovelace", 0.0, False, 0.97)
        ]
        for rid, low in MIN_CONFIDENCE.items():
            given = ANSWERS[ROWS[rid][0]]
            company = (given["company"] or {}).get("name")
            email_ok = rid != 3
            company_ok = rid != 6
            detail += [
                (NEW_EVAL, str(rid), "name", given["name"], given["name"], 1.0, True, low),
                (NEW_EVAL, str(rid), "email", None if rid == 3 else given["email"],
                 given["email"], float(email_ok), email_ok, 0.99),
                (NEW_EVAL, str(rid), "company.name", "Babbage Ltd" if rid == 6 else company,
                 company, float(company_ok), company_ok, 0.98),
            ]  # fmt: skip
        # a wrong value inside a model the row does not have (no confidence: not calibrated)
        detail.append((NEW_EVAL, "3", "company.city", "Bletchley", None, 0.0, False, None))
        # expected and actual as JSON text, as `extract eval` stores them
        con.executemany(
            "INSERT INTO contacts_eval_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                (at, run_id, key, path, json.dumps(want), json.dumps(got), *rest)
                for at, key, path, want, got, *rest in detail
            ],
        )
    finally:
        con.close()


@dataclass
class Output:
    """A pipeline with a real output: its file, run id and config."""

    pipeline: Path
    db: Path
    run_id: str


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Output:
    """The full output: results, errors, runs, trust columns and two evaluations."""
    path = write_project(tmp_path_factory.mktemp("report"))
    run_id = run(path)
    db = path.parent / "out/contacts.duckdb"
    set_trust(db)
    add_evaluations(db, run_id)
    return Output(path, db, run_id)


# ---------------------------------------------------------------------- a small DOM


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Node:
    """An element: its tag, attributes and children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, match: Callable[[Node], bool] | None = None) -> Iterator[Node]:
        for c in self.children:
            if isinstance(c, Node):
                if match is None or match(c):
                    yield c
                yield from c.all(match)

    def find(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements with this tag (any tag: None) whose attributes have these values; `class_`
        matches one of the classes."""

        def match(n: Node) -> bool:
            if tag is not None and n.tag != tag:
                return False
            for name, value in attrs.items():
                if name == "class_":
                    if value not in n.attrs.get("class", "").split():
                        return False
                elif n.attrs.get(name.replace("_", "-")) != value:
                    return False
            return True

        return list(self.all(match))

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert tag not in VOID, tag
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(page: str) -> Node:
    """The page's element tree; every element must be closed where it was opened."""
    builder = _Builder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], [n.tag for n in builder.stack]
    return builder.root


def squash(text: str) -> str:
    return " ".join(text.split())


def report_of(output: Output, tmp_path: Path, **kwargs: Any) -> Node:
    """The report page of `output` (written to tmp_path), as a DOM."""
    page = report_pipeline(output.pipeline, out=tmp_path / "report.html", **kwargs)
    return dom(page.read_text(encoding="utf-8"))


def cards(page: Node) -> list[Node]:
    return page.one(id="review-list").find("article", class_="row")


def card(page: Node, key: int) -> Node:
    return page.one("article", data_key=str(key))


def marks(node: Node) -> dict[str, list[tuple[str, str, str]]]:
    """(class, title, text) of the marks in each input column shown in a review card."""
    return {
        pre.attrs["data-column"]: [
            (m.attrs["class"], m.attrs["title"], m.text()) for m in pre.find("mark")
        ]
        for pre in node.find("pre", class_="text")
    }


def table_rows(node: Node) -> list[list[str]]:
    """The text of each body row's cells."""
    return [[squash(td.text()) for td in tr.find("td")] for tr in node.one("tbody").find("tr")]


# ---------------------------------------------------------------------- the page


def test_header_counts_and_default_path(output: Output, tmp_path: Path) -> None:
    before = output.db.read_bytes()
    written = report_pipeline(output.pipeline)
    assert written == output.pipeline.parent / "out/contacts_report.html"
    assert written == default_report_path(load_pipeline(output.pipeline))
    # the output is only read
    assert output.db.read_bytes() == before
    page = dom(written.read_text(encoding="utf-8"))

    assert squash(page.one("h1").text()) == "contactsextraction report"
    meta = {
        squash(d.one("dt").text()): squash(d.one("dd").text())
        for d in page.one("dl", class_="meta").find("div")
    }
    assert meta["table"] == "contacts"
    assert meta["output"] == str(output.db)
    assert meta["latest run"] == output.run_id
    assert meta["status"] == "completed"
    assert meta["model"] == "fake-model"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", meta["started"])

    counts = page.one("section", id="counts")
    assert [squash(th.text()) for th in counts.find("th")] == [
        "", "latest run", "all runs (1)", "in the tables now"
    ]  # fmt: skip
    # 5 rows answered once, the broken row asked twice: 7 requests of 10 + 5 tokens each
    assert table_rows(counts) == [
        ["rows ok", "5", "5", "5"],
        ["rows failed", "1", "1", "1"],
        ["rows cached", "0", "0", "\u2014"],
        ["rows skipped", "0", "0", "\u2014"],
        ["requests", "7", "7", "7"],
        ["prompt tokens", "70", "70", "70"],
        ["completion tokens", "35", "35", "35"],
        ["tokens", "105", "105", "105"],
        ["cost", "$0.0090", "$0.0090", "$0.0090"],
    ]
    tiles = [tuple(d.text() for d in t.find("div")) for t in page.find("div", class_="tile")]
    assert tiles == [
        ("5", "rows in the table"), ("1", "rows in the errors table"), ("5", "rows to review"),
        ("7", "requests, latest run"), ("$0.0090", "cost, latest run"),
    ]  # fmt: skip
    # numbers are right-aligned cells
    assert all(
        "n" in td.attrs["class"].split() for td in counts.find("td", data_scope="latest run")
    )


def test_values_from_the_data_are_escaped(output: Output, tmp_path: Path) -> None:
    html = report_pipeline(output.pipeline, out=tmp_path / "r.html").read_text(encoding="utf-8")
    # markup in the source, the answers and the raw output is text, never markup
    assert "<script>alert" not in html
    assert "<b>not json" not in html
    assert html.count("<script") == 1  # the page's own script
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in html
    assert "&lt;b&gt;not json&lt;/b&gt; &amp; more" in html
    page = dom(html)
    row4 = card(page, 4)
    name = row4.one("tr", data_path="name")
    assert squash(name.one("td", class_="v").text()) == SCRIPT_NAME
    assert [p.text() for p in row4.find("pre", class_="text")] == list(ROWS[4])
    assert card(page, 5).one("pre", class_="raw").text() == RAW_BROKEN


def test_grounded_spans_are_highlighted_in_the_source_text(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path)
    assert marks(card(page, 3)) == {
        "subject": [],
        "text": [("g-fuzzy", "name", "Alan")],
    }
    assert marks(card(page, 2)) == {
        "subject": [],
        "text": [("g-normalized", "name", "grace hopper"),
                 ("g-fuzzy", "company.name", "Cobol Systems")],
    }  # fmt: skip
    # two values in one place: the overlap is cut out and marked with both paths
    assert marks(card(page, 6)) == {
        "subject": [],
        "text": [("g-exact", "name", "Charles "), ("g-exact", "name, company.name", "Babbage"),
                 ("g-exact", "company.city", "Cambridge")],
    }  # fmt: skip
    assert marks(card(page, 4)) == {
        "subject": [("g-exact", "tags[0]", "<script>alert(1)</script>")],
        "text": [("g-exact", "name", SCRIPT_NAME)],
    }
    assert marks(card(page, 5)) == {"subject": [], "text": []}
    # the marked text is the source text, whole
    for key in (2, 3, 4, 5, 6):
        texts = [p.text() for p in card(page, key).find("pre", class_="text")]
        assert texts == list(ROWS[key])


def test_values_show_confidence_grounding_and_wrong_labels(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path)
    assert table_rows(card(page, 3).one("table")) == [
        ["name", "Alan Turing", "0.91", "fuzzy"],
        ["email", "alan@bletchley.exampleexpected: null", "0.99", "\u26a0 not in text"],
        ["company", "null", "\u2014", "\u2014"],
        ["tags", "[]", "\u2014", "\u2014"],
        ["urgent", "false", "0.99", "\u2014"],
    ]
    # a wrong value with no line of its own is said below the values
    assert [squash(p.text()) for p in card(page, 3).find("p", class_="error")] == [
        "wrong company.city: expected Bletchley, got null"
    ]
    email = card(page, 3).one("tr", data_path="email")
    assert email.attrs["class"].split() == ["ungrounded", "wrong"]
    assert email.one("span", class_="badge").attrs["class"] == "badge g-none"
    six = card(page, 6).one("tr", data_path="company.name")
    assert squash(six.one("td", class_="v").text()) == "Babbageexpected: Babbage Ltd"
    # below the threshold: flagged
    name = card(page, 2).one("tr", data_path="name")
    assert [td.attrs.get("class", "") for td in name.find("td")] == ["", "v", "n low", ""]
    assert [squash(td.text()) for td in name.find("td")] == [
        "name", "Grace Hopper", "0.42", "normalized"
    ]  # fmt: skip


def test_review_list_order_reasons_and_failed_rows(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path)
    listed = [(c.attrs["data-key"], c.attrs["data-reasons"]) for c in cards(page)]
    # failed, then wrong values, not in the text, low confidence (lowest first); row 1 is
    # fine, and only the older evaluation said its name was wrong
    assert listed == [
        ("5", "failed"), ("3", "wrong ungrounded"), ("6", "wrong"),
        ("2", "low_confidence"), ("4", "low_confidence"),
    ]  # fmt: skip
    hint = squash(page.one("section", id="review").one("h2").one("span").text())
    assert hint == (
        "5 rows: 1 failed, 2 with wrong values, 1 with values not found in the text, "
        "2 with a value below confidence 0.8"
    )
    failed = card(page, 5)
    assert squash(failed.one("p", class_="error").text()) == "MalformedOutput " + BROKEN_MESSAGE
    assert squash(failed.one("span", class_="facts").text()) == "2 attempts"
    assert squash(card(page, 3).one("span", class_="facts").text()) == (
        "lowest confidence 0.91 \u00b7 1 value not in text"
    )
    assert page.find(id="left-out") == []


def test_threshold_and_cap(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path, threshold=0.9)
    assert [(c.attrs["data-key"], c.attrs["data-reasons"]) for c in cards(page)] == [
        ("5", "failed"), ("3", "wrong ungrounded"), ("6", "wrong low_confidence"),
        ("2", "low_confidence"), ("4", "low_confidence"),
    ]  # fmt: skip
    bars = page.one("section", id="confidence").find("rect")
    assert [(r.attrs["data-bin"], r.attrs["class"]) for r in bars] == [
        ("4", "bar-low"), ("5", "bar-low"), ("8", "bar-low"), ("9", "bar")
    ]  # fmt: skip

    page = report_of(output, tmp_path, cap=2)
    assert [c.attrs["data-key"] for c in cards(page)] == ["5", "3"]
    assert squash(page.one(id="left-out").text()) == (
        "2 of 5 rows are shown; 3 more are left out (the list stops at 2)."
    )
    with pytest.raises(ConfigError) as bad:
        report_pipeline(output.pipeline, out=tmp_path / "x.html", threshold=1.5)
    assert str(bad.value) == "report threshold 1.5: must be between 0 and 1"
    with pytest.raises(ConfigError) as bad:
        report_pipeline(output.pipeline, out=tmp_path / "x.html", cap=0)
    assert str(bad.value) == "report cap 0: must be at least 1"


def test_errors_fill_rates_and_histogram(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path)
    errors = table_rows(page.one("section", id="errors"))
    assert len(errors) == 1
    assert errors == [["MalformedOutput", "1", "1", BROKEN_MESSAGE]]
    fill = page.one("section", id="fill")
    assert [row[:3] for row in table_rows(fill)] == [
        ["name", "5", "100.0%"],
        ["email", "2", "40.0%"],
        ["company", "3", "60.0%"],
        ["name", "3", "60.0%"],
        ["city", "2", "40.0%"],
        ["tags (non-empty)", "2", "40.0%"],
        ["urgent", "5", "100.0%"],
    ]
    assert [tr.attrs["data-field"] for tr in fill.one("tbody").find("tr")] == [
        "name", "email", "company", "company.name", "company.city", "tags", "urgent"
    ]  # fmt: skip
    chart = page.one("section", id="confidence")
    bars = chart.find("rect")
    assert [(r.attrs["data-bin"], r.attrs["data-count"], r.attrs["class"]) for r in bars] == [
        ("4", "1", "bar-low"), ("5", "1", "bar-low"), ("8", "1", "bar"), ("9", "2", "bar")
    ]  # fmt: skip
    assert [r.one("title").text() for r in bars] == [
        "0.4\u20130.5: 1 row", "0.5\u20130.6: 1 row", "0.8\u20130.9: 1 row", "0.9\u20131.0: 2 rows"
    ]  # fmt: skip
    # the tallest bar is twice the others
    heights = [int(r.attrs["height"]) for r in bars]
    assert heights == [heights[0]] * 3 + [2 * heights[0]]
    assert squash(chart.one("p").text()) == (
        "5 rows have a confidence; 2 are below 0.8 and listed for review."
    )


def test_accuracy_and_calibration_of_the_latest_evaluation(output: Output, tmp_path: Path) -> None:
    page = report_of(output, tmp_path)
    accuracy = page.one("section", id="accuracy")
    assert squash(accuracy.one("p").text()) == (
        f"evaluated 2026-12-01 09:00:00 UTC, labels labels.csv, run {output.run_id}"
    )
    # the older evaluation's 20% for name is not shown
    assert table_rows(accuracy) == [
        ["all fields", "exact", "15", "86.7%", "\u2014", "\u2014", "\u2014"],
        ["company.name", "fuzzy", "5", "80.0%", "\u2014", "\u2014", "\u2014"],
        ["email", "exact", "5", "80.0%", "0.500", "1.000", "0.667"],
        ["name", "exact", "5", "100.0%", "\u2014", "\u2014", "\u2014"],
    ]
    calibration = page.one("section", id="calibration")
    assert table_rows(calibration) == [
        ["0.4\u20130.5", "1", "0.420", "100.0%", "+0.580"],
        ["0.5\u20130.6", "1", "0.550", "100.0%", "+0.450"],
        ["0.8\u20130.9", "1", "0.880", "100.0%", "+0.120"],
        ["0.9\u20131.0", "12", "0.978", "83.3%", "-0.144"],
    ]
    assert squash(calibration.find("p")[-1].text()) == (
        "Expected calibration error 0.192 over 15 evaluated values with a confidence."
    )


def test_marks_never_nest_badly_and_drop_spans_outside_the_text() -> None:
    text = "a<b> & c"
    spans = [
        Highlight("t", 0, 4, "fuzzy", "x"),
        Highlight("t", 1, 8, "exact", "y"),
        Highlight("t", 5, 99, "exact", "past the end"),
        Highlight("t", 3, 3, "exact", "empty"),
    ]
    assert marked_html(text, spans) == (
        '<mark class="g-fuzzy" title="x" data-paths="x">a</mark>'
        '<mark class="g-exact" title="x, y" data-paths="x y">&lt;b&gt;</mark>'
        '<mark class="g-exact" title="y" data-paths="y"> &amp; c</mark>'
    )
    assert marked_html(text, []) == "a&lt;b&gt; &amp; c"


# ---------------------------------------------------------------------- what may be missing


def test_an_output_without_trust_columns_or_evaluations(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    run(path)
    db = path.parent / "out/contacts.duckdb"
    con = duckdb.connect(str(db))
    try:
        have = {r[0] for r in con.execute("DESCRIBE contacts").fetchall()}
        for name in TRUST_DDL:
            if name in have:
                con.execute(f"ALTER TABLE contacts DROP COLUMN {name}")
    finally:
        con.close()
    page = dom(report_pipeline(path).read_text(encoding="utf-8"))
    notice = [squash(li.text()) for li in page.one("div", class_="notice").find("li")]
    assert notice == [
        "contacts: no _confidence, _min_confidence, _margins, _grounding, _ungrounded columns "
        "(confidence and grounding are not shown for what is missing)"
    ]
    assert squash(page.one("section", id="confidence").one("p").text()) == (
        "The run had no confidence: run.confidence: true asks for it (the model's token "
        "log-probabilities)."
    )
    assert squash(page.one("section", id="accuracy").one("p").text()) == (
        "No evaluation yet: extract eval compares the table with labelled rows and writes "
        "contacts_eval."
    )
    assert page.find(id="calibration") == []
    assert [c.attrs["data-key"] for c in cards(page)] == ["5"]
    notes = [squash(p.text()) for p in page.one("section", id="review").find("p", class_="muted")]
    assert notes[:2] == [
        "no _min_confidence column: rows are not picked by confidence",
        "no _ungrounded column: rows are not picked by grounding",
    ]
    # values are still listed, without confidence or grounding
    assert [len(r) for r in table_rows(page.one("section", id="fill"))] == [4] * 7


def test_a_fresh_run_without_logprobs_has_no_confidence(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    run(path)
    page = dom(report_pipeline(path).read_text(encoding="utf-8"))
    assert page.one("section", id="confidence").find("svg") == []
    assert "The run had no confidence" in page.one("section", id="confidence").text()
    assert page.find("div", class_="notice") == []
    assert cards(page)[0].attrs["data-key"] == "5"

    # an evaluation of another run than the latest says so
    add_evaluations(path.parent / "out/contacts.duckdb", "20261101T000000-0ld0ld00")
    page = dom(report_pipeline(path).read_text(encoding="utf-8"))
    assert squash(page.one("section", id="accuracy").one("p", class_="error").text()) == (
        "This evaluation is of an earlier run, not of the latest one."
    )


def test_source_texts_that_cannot_be_read(output: Output, tmp_path: Path) -> None:
    python = load_pipeline(output.pipeline, {"source.type": "python", "source.path": None})
    page = dom(write_report(python, tmp_path / "a.html").read_text(encoding="utf-8"))
    review = page.one("section", id="review")
    assert (
        "input texts are not shown: the source is rows handed over from Python, which the "
        "report cannot read again"
    ) in [squash(p.text()) for p in review.find("p", class_="muted")]
    assert card(page, 3).find("pre", class_="text") == []
    assert "The input text is not available." in squash(card(page, 3).text())
    # the values are still there
    assert card(page, 3).one("tr", data_path="email").attrs["class"] == "ungrounded wrong"

    fewer = tmp_path / "fewer.csv"
    fewer.write_text("id,text\n3,Please send the invoice to Alan. Thanks!\n")
    changed = load_pipeline(output.pipeline, {"source.path": str(fewer)})
    page = dom(write_report(changed, tmp_path / "c.html").read_text(encoding="utf-8"))
    notes = [squash(p.text()) for p in page.one("section", id="review").find("p", class_="muted")]
    assert (
        f"input texts are not shown: {output.pipeline}:prompt.user: unknown column(s) 'subject'; "
        "the source has: id, text"
    ) in notes

    gone = load_pipeline(output.pipeline, {"source.path": str(tmp_path / "gone.csv")})
    page = dom(write_report(gone, tmp_path / "b.html").read_text(encoding="utf-8"))
    notes = [squash(p.text()) for p in page.one("section", id="review").find("p", class_="muted")]
    assert f"input texts are not shown: {tmp_path / 'gone.csv'}: no such file" in notes


def test_the_report_command(output: Output, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from extract.cli import main

    out = tmp_path / "page.html"
    result = CliRunner().invoke(
        main, ["report", str(output.pipeline), "--out", str(out), "--threshold", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"{out}\n"
    assert "<mark" in out.read_text(encoding="utf-8")
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert missing.output.startswith("extract: error: ")


def test_no_output_yet(tmp_path: Path) -> None:
    path = write_project(tmp_path)
    with pytest.raises(SinkError, match="no output yet"):
        report_pipeline(path)


# ---------------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chromium() -> str:
    """The headless browser (Debian's `chromium`); skipped when absent, unless CI is set."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed; run: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(chromium: str, page: Path, tmp_path: Path, *args: str) -> str:
    """Run headless Chromium on `page` with `args`; its standard output."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--hide-scrollbars", "--force-color-profile=srgb",
         "--force-device-scale-factor=1", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@dataclass
class Image:
    """A decoded PNG: size and one bytes object of RGB(A) pixels per row."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def colours(self) -> Counter[tuple[int, ...]]:
        """How many pixels have each colour (alpha left out)."""
        counts: Counter[tuple[int, ...]] = Counter()
        n = self.channels
        for row in self.rows:
            counts.update(zip(row[0::n], row[1::n], row[2::n], strict=True))
        return counts


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: Path) -> Image:
    """A non-interlaced 8-bit RGB or RGBA PNG, decoded (chunks, zlib, scanline filters)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length  # length, type, body, CRC
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour_type in (2, 6), (depth, colour_type, interlace)
    n = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * n
    prev = bytes(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(n, stride):
                line[i] = (line[i] + line[i - n]) & 255
        elif kind == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - n] if i >= n else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, c = (line[i - n], prev[i - n]) if i >= n else (0, 0)
                line[i] = (line[i] + _paeth(a, prev[i], c)) & 255
        prev = bytes(line)
        rows.append(prev)
    return Image(width, height, n, rows)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.removeprefix("#"), 16)
    return (value >> 16, (value >> 8) & 255, value & 255)


def screenshot(chromium: str, page: Path, tmp_path: Path, name: str) -> Image:
    shot = tmp_path / f"{name}.png"
    browse(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1280,3000")
    image = read_png(shot)
    assert (image.width, image.height) == (1280, 3000)
    return image


@pytest.mark.browser
@pytest.mark.slow
def test_browser_paints_the_highlights_and_the_histogram(
    output: Output, chromium: str, tmp_path: Path
) -> None:
    page = report_pipeline(output.pipeline, out=tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    # the same page with the marks in the input texts unpainted (the legend and the value
    # badges keep the colours): what differs is what the marks painted
    plain = tmp_path / "plain.html"
    unmarked, n = re.subn(r'<mark class="g-(\w+)" title=', r'<mark class="x-\1" title=', html)
    assert n == 8
    plain.write_text(unmarked, encoding="utf-8")

    shown = screenshot(chromium, page, tmp_path, "report").colours()
    bare = screenshot(chromium, plain, tmp_path, "plain").colours()

    painted = {k: shown[rgb(COLOURS[k])] - bare[rgb(COLOURS[k])] for k in COLOURS}
    # at least a third of the marks' boxes (about 18 px high, less the glyphs) in each colour:
    # exact marks cover about 75 characters, fuzzy ones 17, normalized ones 12
    assert painted["g-exact"] > 4000, painted
    assert painted["g-fuzzy"] > 800, painted
    assert painted["g-normalized"] > 500, painted
    # the bars are drawn only in the chart, and their areas follow the counts: 3 rows at or
    # above the threshold, 2 below
    assert painted["bar"] == painted["bar-low"] == 0
    blue, orange = shown[rgb(COLOURS["bar"])], shown[rgb(COLOURS["bar-low"])]
    assert orange > 5000, (blue, orange)
    assert 1.4 < blue / orange < 1.6, (blue, orange)


@pytest.mark.browser
@pytest.mark.slow
def test_browser_dom_after_the_script_and_no_external_resources(
    output: Output, chromium: str, tmp_path: Path
) -> None:
    page = report_pipeline(output.pipeline, out=tmp_path / "report.html")
    assert 'id="review-filter"' not in page.read_text(encoding="utf-8")
    loaded = dom(browse(chromium, page, tmp_path, "--dump-dom"))

    # the inline script ran (its hash is what the Content-Security-Policy allows) and built
    # the filter bar over the review list
    bar = loaded.one("div", id="review-filter")
    assert [(b.text(), b.attrs["aria-pressed"]) for b in bar.find("button")] == [
        ("All shown (5)", "true"), ("Failed (1)", "false"), ("Wrong value (2)", "false"),
        ("Not in text (1)", "false"), ("Low confidence (2)", "false"),
    ]  # fmt: skip
    assert [c.attrs["data-key"] for c in cards(loaded)] == ["5", "3", "6", "2", "4"]

    # nothing is fetched: no element names a resource outside the page
    policy = loaded.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert policy.startswith("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-")
    for node in loaded.all():
        assert node.tag not in {"link", "iframe", "img", "object", "embed", "video", "audio"}
        for name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
            value = node.attrs.get(name)
            assert value is None or value.startswith(("#", "data:")), (node.tag, name, value)
    assert "url(" not in "".join(s.text() for s in loaded.find("style"))
    # the script only added the filter: the rest is the page as written, which is what a
    # reader without scripts gets (and what the tests above read)
    assert marks(card(loaded, 6)) == marks(card(dom(page.read_text(encoding="utf-8")), 6))
