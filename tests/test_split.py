"""Long inputs: the splitter, the merge policies, and a split row run end to end against the
real test server (which answers from the `@field: <JSON>` lines of each part's text, so the
merged answer shows which part gave what)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

import extract
from extract.config import load_pipeline
from extract.errors import ConfigError
from extract.pipeline import prepare
from extract.providers import get_provider
from extract.providers.testserver import ServerThread
from extract.split import Merger, input_limit, split_text, text_units
from extract.split.chunk import Span
from extract.split.tokens import tokens
from extract.trust.shape import model_shape

KEY = "sk-test-secret"

SCHEMA = """\
import datetime
from typing import Literal

from pydantic import BaseModel


class Vendor(BaseModel):
    name: str | None
    city: str | None


class Line(BaseModel):
    sku: str
    qty: int


class Invoice(BaseModel):
    number: str | None
    total: float | None
    tags: list[str]
    urgent: bool | None
    status: Literal["open", "paid"] | None
    note: str | None
    vendor: Vendor | None
    lines: list[Line]
    first_date: datetime.date | None
    last_date: datetime.date | None
"""

PIPELINE = """\
name: inv
source: {type: python, key: id}
schema: m.py:Invoice
prompt:
  system: Extract the invoice.
  user: "Invoice {id}:\\n{text}"
model:
  provider: openai
  base_url: BASE_URL
  api_key_env: SPLIT_TEST_KEY
  max_input_tokens: 160
run: {concurrency: 4, max_attempts: 2, max_retries: 1, backoff_s: 0.001}
split:
  overlap_chars: 40
  merge: {first_date: min, last_date: max, note: concat}
output: {type: duckdb, path: out/r.duckdb, table: invoices}
"""

FILLER = "This page goes on with words that carry no field at all, only prose."

PAGES = [
    '--- page 1 ---\n@number: "INV-7"\n@tags: ["a", "b"]\n@urgent: false\n@status: "open"\n'
    '@vendor: {"name": "Acme", "city": null}\n@first_date: "2024-03-05"\n'
    '@note: "see page one"\n' + FILLER + "\n",
    '--- page 2 ---\n@tags: ["b", "c"]\n@urgent: true\n@status: "paid"\n'
    '@vendor: {"name": "Other", "city": "Oslo"}\n@lines: [{"sku": "X1", "qty": 2}]\n'
    '@first_date: "2024-01-02"\n@last_date: "2024-02-01"\n@note: "and page two"\n' + FILLER + "\n",
    '--- page 3 ---\n@total: 99.5\n@urgent: true\n@status: "open"\n'
    '@lines: [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 1}]\n@last_date: "2024-04-30"\n'
    '@note: "see page one"\n' + FILLER + "\n",
]
TEXT = "".join(PAGES)


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ServerThread) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPLIT_TEST_KEY", KEY)
    (tmp_path / "m.py").write_text(SCHEMA)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.replace("BASE_URL", server.base_url))
    server.configure(answer_from_text=True)
    return path


def rows(path: Path, query: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cur = con.execute(query)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --------------------------------------------------------------------------- the splitter


def texts(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def test_a_text_that_fits_is_one_part() -> None:
    assert split_text("short text", 100) == [Span(0, 0, 10)]


def test_paragraphs_are_packed_whole_and_blank_lines_dropped() -> None:
    text = "Alpha one two.\n\nBeta three four five.\n\nGamma six."
    assert split_text(text, 30) == [Span(0, 0, 14), Span(16, 16, 37), Span(39, 39, 49)]
    # two paragraphs fit together in 40 units
    assert texts(text, split_text(text, 40)) == [
        "Alpha one two.\n\nBeta three four five.",
        "Gamma six.",
    ]


def test_page_markers_keep_each_page_in_one_part() -> None:
    text = "--- page 1 ---\nInvoice 1\n\nmore\n--- page 2 ---\nTotal\n--- page 3 ---\nend"
    # the paragraph break inside page 1 is no cut: the pages are the units
    assert texts(text, split_text(text, 40)) == [
        "--- page 1 ---\nInvoice 1\n\nmore",
        "--- page 2 ---\nTotal",
        "--- page 3 ---\nend",
    ]
    # pages 1 and 2 fit together in 60 units, and page 3 does not join them
    assert texts(text, split_text(text, 60)) == [
        "--- page 1 ---\nInvoice 1\n\nmore\n--- page 2 ---\nTotal",
        "--- page 3 ---\nend",
    ]


def test_a_page_too_long_is_cut_at_its_paragraphs_apart_from_its_neighbours() -> None:
    text = "--- page 1 ---\nshort\n--- page 2 ---\naaaa bbbb cccc\n\ndddd eeee\n--- page 3 ---\nz"
    assert texts(text, split_text(text, 35)) == [
        "--- page 1 ---\nshort",
        "--- page 2 ---\naaaa bbbb cccc",
        "dddd eeee",
        "--- page 3 ---\nz",
    ]


def test_overlap_repeats_the_end_of_the_part_before_from_a_word_start() -> None:
    text = "Alpha one two.\n\nBeta three four five.\n\nGamma six."
    spans = split_text(text, 30, overlap_chars=8)
    assert spans == [Span(0, 0, 14), Span(10, 16, 37), Span(32, 39, 49)]
    assert texts(text, spans) == [
        "Alpha one two.",
        "two.\n\nBeta three four five.",
        "five.\n\nGamma six.",
    ]
    for span in spans:
        assert text_units(text[span.start : span.end]) <= 30


def test_a_single_huge_paragraph_is_cut_at_sentences_then_words() -> None:
    text = "one two three. four five six. seven eight nine ten eleven twelve thirteen."
    assert texts(text, split_text(text, 30)) == [
        "one two three. four five six.",
        "seven eight nine ten eleven",
        "twelve thirteen.",
    ]


def test_a_word_longer_than_the_budget_is_cut_at_characters() -> None:
    assert texts("x" * 25, split_text("x" * 25, 10)) == ["x" * 10, "x" * 10, "x" * 5]
    # digits weigh a whole token each (3 units)
    assert texts("12345678", split_text("12345678", 9)) == ["123", "456", "78"]


def test_the_estimate_is_conservative_for_digits_and_non_ascii() -> None:
    assert text_units("abc") == 3
    assert text_units("a1") == 4
    assert text_units("AB") == 4  # capitals: 2/3 of a token each
    assert text_units("é東") == 6
    assert text_units("👍") == 6  # an emoji: two tokens
    assert tokens(text_units("four")) == 2


# --------------------------------------------------------------------------- merge policies

MERGE_SCHEMA = SCHEMA


@pytest.fixture
def invoice_shape(tmp_path: Path) -> Any:
    (tmp_path / "m2.py").write_text(SCHEMA)
    from extract.schema import load_model

    return model_shape(load_model("m2.py:Invoice", tmp_path))


def merged(shape: Any, policies: dict[str, Any], answers: list[dict[str, Any]]) -> Any:
    return Merger(shape, policies, where="p.yaml:split.merge", model="Invoice").merge(answers)


def blank(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "number": None, "total": None, "tags": [], "urgent": None, "status": None,
        "note": None, "vendor": None, "lines": [], "first_date": None, "last_date": None,
    }  # fmt: skip
    return {**base, **values}


def test_default_policies_by_type(invoice_shape: Any) -> None:
    answers = [
        blank(number=None, total=3.0, tags=["a", "b"], urgent=False, status="open",
              vendor={"name": "Acme", "city": None}, note="x"),
        blank(number="N-2", total=4.0, tags=["b", "c"], urgent=True, status="paid",
              vendor={"name": "Other", "city": "Oslo"}, lines=[{"sku": "A", "qty": 1}],
              note="y"),
        blank(number="N-3", urgent=True, status="paid", vendor=None,
              lines=[{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]),
    ]  # fmt: skip
    assert merged(invoice_shape, {}, answers) == {
        "number": "N-2",  # first non-null
        "total": 3.0,  # numbers: first non-null
        "tags": ["a", "b", "c"],  # lists: union, order kept
        "urgent": True,  # booleans: vote
        "status": "paid",  # enums: vote
        "note": "x",  # strings: first
        "vendor": {"name": "Acme", "city": "Oslo"},  # nested models: field by field
        "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],  # items de-duplicated
        "first_date": None,
        "last_date": None,
    }


def test_vote_ties_go_to_the_earliest_part(invoice_shape: Any) -> None:
    answers = [blank(status="paid"), blank(status="open"), blank(status=None), blank()]
    assert merged(invoice_shape, {}, answers)["status"] == "paid"
    answers = [blank(status="open"), blank(status="paid"), blank(status="paid")]
    assert merged(invoice_shape, {}, answers)["status"] == "paid"


def test_min_max_concat_and_first_on_a_model(invoice_shape: Any) -> None:
    answers = [
        blank(first_date="2024-03-05", last_date="2024-03-05", total=10.5, note="a",
              vendor={"name": None, "city": "Rome"}),
        blank(first_date="2024-01-02", last_date="2024-12-01", total=2.25, note="b"),
        blank(first_date=None, last_date="2023-01-01", total=None, note="a",
              vendor={"name": "Z", "city": None}),
    ]  # fmt: skip
    policies = {
        "first_date": "min", "last_date": "max", "total": "max", "note": "concat",
        "vendor": "first", "tags": "first", "number": "vote",
    }  # fmt: skip
    out = merged(invoice_shape, policies, answers)
    assert out["first_date"] == "2024-01-02"
    assert out["last_date"] == "2024-12-01"
    assert out["total"] == 10.5
    assert out["note"] == "a\nb"  # distinct values, in part order
    assert out["vendor"] == {"name": None, "city": "Rome"}  # taken whole from one part
    assert out["tags"] == []
    assert out["number"] is None
    out = merged(invoice_shape, {"total": "min"}, answers)
    assert out["total"] == 2.25


def test_min_and_max_order_decimals_and_datetimes_by_value(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text(
        "import datetime, decimal\nfrom pydantic import BaseModel\n"
        "class D(BaseModel):\n    amount: decimal.Decimal | None\n"
        "    at: datetime.datetime | None\n"
    )
    from extract.schema import load_model

    shape = model_shape(load_model("d.py:D", tmp_path))
    merger = Merger(shape, {"amount": "max", "at": "min"}, where="w", model="D")
    answers = [
        {"amount": "9.50", "at": "2024-01-01T12:00:00+02:00"},
        {"amount": "10.25", "at": "2024-01-01T11:00:00+00:00"},
    ]
    # as text "9.50" > "10.25"; as numbers not. 12:00+02:00 is 10:00 UTC, before 11:00 UTC
    assert merger.merge(answers) == {"amount": "10.25", "at": "2024-01-01T12:00:00+02:00"}


def test_policies_are_checked_against_the_schema(invoice_shape: Any) -> None:
    bad = {
        "number": "min",
        "total": "union",
        "tags": "concat",
        "vendor": "max",
        "lines.sku": "first",
        "nope": "first",
        "vendor.zip": "first",
    }
    with pytest.raises(ConfigError) as e:
        Merger(invoice_shape, bad, where="p.yaml:split.merge", model="Invoice")
    assert e.value.problems == [
        "p.yaml:split.merge.number: min: needs a number, date or time field; "
        "the field holds str values",
        "p.yaml:split.merge.total: union: needs a list; the field holds float values",
        "p.yaml:split.merge.tags: concat: needs a string field; the field holds a list",
        "p.yaml:split.merge.vendor: max: needs a number, date or time field; "
        "the field holds a nested model",
        "p.yaml:split.merge.lines.sku: is inside the list 'lines', whose items are merged "
        "whole (set the policy of 'lines') of Invoice",
        "p.yaml:split.merge.nope: is not a field of Invoice",
        "p.yaml:split.merge.vendor.zip: is not a field of Invoice",
    ]


# --------------------------------------------------------------------------- end to end


def test_a_long_text_is_split_requested_per_part_and_merged(
    pipeline: Path, server: ServerThread
) -> None:
    source = [{"id": 1, "text": TEXT}, {"id": 2, "text": PAGES[0]}]
    summary = extract.run_pipeline(pipeline, source=source)
    assert (summary.status, summary.rows_ok, summary.rows_failed) == ("completed", 2, 0)
    # row 1: one request per page (3), row 2 fits in one
    assert summary.requests == 4
    stats = server.stats()
    assert (stats["total_requests"], stats["distinct_bodies"]) == (4, 4)
    got = rows(
        Path("out/r.duckdb"),
        "SELECT id, number, total, tags, urgent, status, note, vendor, lines, first_date, "
        "last_date, _parts, _requests, _attempts, _prompt_tokens FROM invoices ORDER BY id",
    )
    assert got[0] == {
        "id": 1,
        "number": "INV-7",
        "total": 99.5,
        "tags": ["a", "b", "c"],
        "urgent": True,
        "status": "open",
        "note": "see page one\nand page two",
        "vendor": {"name": "Acme", "city": "Oslo"},
        "lines": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 1}],
        "first_date": dt.date(2024, 1, 2),
        "last_date": dt.date(2024, 4, 30),
        "_parts": 3,
        "_requests": 3,
        "_attempts": 1,
        # usage is summed over the parts: the two rows' tokens are all the server counted
        "_prompt_tokens": stats["usage"]["prompt_tokens"] - got[1]["_prompt_tokens"],
    }
    assert (got[1]["_parts"], got[1]["number"], got[1]["total"]) == (1, "INV-7", None)


def test_a_rerun_pays_nothing_for_a_finished_split_row(
    pipeline: Path, server: ServerThread
) -> None:
    # the key out of the prompt: another row of the same text makes the same requests
    same = {"prompt.user": "{text}"}
    first = extract.run_pipeline(pipeline, same, source=[{"id": 1, "text": TEXT}])
    assert (first.rows_ok, first.requests) == (1, 3)
    again = extract.run_pipeline(pipeline, same, source=[{"id": 1, "text": TEXT}])
    assert (again.rows_skipped, again.requests, again.cost_usd) == (1, 0, 0.0)
    # a new row of the same text is answered from the cache, which holds the merged answer
    other = extract.run_pipeline(pipeline, same, source=[{"id": 2, "text": TEXT}])
    assert (other.rows_cached, other.requests) == (1, 0)
    assert server.stats()["total_requests"] == 3
    # the merged answer under the row's hash, and each part's answer under its own
    cached = "SELECT parts, count(*) AS n FROM _extract_cache GROUP BY parts ORDER BY parts"
    assert rows(Path("out/r.duckdb"), cached) == [{"parts": 1, "n": 3}, {"parts": 3, "n": 1}]
    assert rows(Path("out/r.duckdb"), "SELECT id, _parts, total FROM invoices ORDER BY id") == [
        {"id": 1, "_parts": 3, "total": 99.5},
        {"id": 2, "_parts": 3, "total": 99.5},
    ]
    # a change to the merge is a new answer (the row's hash changes), from the parts' cache
    changed = extract.run_pipeline(
        pipeline, {**same, "split.merge": {"total": "min"}}, source=[{"id": 1, "text": TEXT}]
    )
    assert (changed.rows_ok, changed.rows_cached, changed.requests) == (1, 0, 0)


def test_grounding_offsets_are_offsets_into_the_whole_text(pipeline: Path) -> None:
    extract.run_pipeline(pipeline, source=[{"id": 1, "text": TEXT}])
    (got,) = rows(Path("out/r.duckdb"), "SELECT _grounding FROM invoices")
    g = got["_grounding"]
    # each value came from one part; its span is where it stands in the original column
    start = TEXT.index("99.5")
    assert start > len(PAGES[0]) + len(PAGES[1])  # on page 3, far past its part's own start
    assert g["total"] == {"status": "exact", "column": "text", "start": start, "end": start + 4}
    start = TEXT.index("Oslo")
    assert g["vendor"]["city"] == {
        "status": "exact",
        "column": "text",
        "start": start,
        "end": start + 4,
    }
    start = TEXT.index("Y2")
    assert g["lines"][1]["sku"] == {
        "status": "exact",
        "column": "text",
        "start": start,
        "end": start + 2,
    }
    assert TEXT[g["number"]["start"] : g["number"]["end"]] == "INV-7"


def test_a_failed_part_fails_the_row_with_its_error(pipeline: Path, server: ServerThread) -> None:
    bad = TEXT.replace('{"sku": "X1", "qty": 2}]\n@first', '{"sku": "X1", "qty": "many"}]\n@first')
    assert bad != TEXT
    # part 2: the end of page 1 (the overlap), then page 2 up to its last character
    assert bad[198:224] == "that carry no field at all" and bad[524] == "\n"
    assert bad[len(PAGES[0]) : 524] == PAGES[1].replace("2}]", '"many"}]').rstrip()
    summary = extract.run_pipeline(pipeline, source=[{"id": 1, "text": bad}])
    assert (summary.rows_ok, summary.rows_failed) == (0, 1)
    (err,) = rows(
        Path("out/r.duckdb"),
        "SELECT _error_class, _message, _parts, _attempts FROM invoices_errors",
    )
    assert err == {
        "_error_class": "InvalidOutput",
        "_message": "part 2 of 3 (characters 238-524 of column 'text'): the answer does not "
        "match the schema: lines.0.qty: Input should be a valid integer, unable to parse string "
        "as an integer",
        "_parts": 3,
        "_attempts": 2,
    }


def test_a_row_that_cannot_be_split_small_enough_is_its_error(
    pipeline: Path, server: ServerThread
) -> None:
    source = [{"id": 1, "text": TEXT}, {"id": 2, "text": "short"}, {"id": 3, "text": PAGES[0]}]
    summary = extract.run_pipeline(pipeline, {"split.max_parts": 2}, source=source)
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (2, 1, 2)
    (err,) = rows(Path("out/r.duckdb"), "SELECT id, _error_class, _message FROM invoices_errors")
    assert err == {
        "id": 1,
        "_error_class": "InputTooLong",
        "_message": "the prompt is about 313 tokens, over the limit of 160 "
        "(model.max_input_tokens); column 'text' would need more than split.max_parts (2) "
        "parts of about 133 tokens",
    }


def test_a_prompt_too_long_without_the_split_column_is_the_rows_error(pipeline: Path) -> None:
    system = "Extract the invoice. " + "Read every line with care. " * 20
    summary = extract.run_pipeline(
        pipeline, {"prompt.system": system}, source=[{"id": 1, "text": TEXT}]
    )
    assert (summary.rows_failed, summary.requests) == (1, 0)
    (err,) = rows(Path("out/r.duckdb"), "SELECT _error_class, _message FROM invoices_errors")
    assert err == {
        "_error_class": "InputTooLong",
        "_message": "the prompt is about 500 tokens, over the limit of 160 "
        "(model.max_input_tokens); without column 'text' it is still about 215 tokens, which "
        "leaves no room for that column's text",
    }


def test_config_errors_name_the_file_and_key(pipeline: Path) -> None:
    def problems(**overrides: Any) -> list[str]:
        with pytest.raises(ConfigError) as e:
            prepare(load_pipeline(pipeline, overrides), rows=[{"id": 1, "text": "x"}]).close()
        return [p.replace(str(pipeline), "p.yaml") for p in e.value.problems]

    assert problems(**{"split.merge": {"tags": "min", "lines": "concat"}}) == [
        "p.yaml:split.merge.tags: min: needs a number, date or time field; the field holds a list",
        "p.yaml:split.merge.lines: concat: needs a string field; the field holds a list",
    ]
    assert problems(**{"split.column": "subject"}) == [
        "p.yaml:split.column: 'subject' is not a column the prompt names; it names: id, text"
    ]
    assert problems(**{"split.merge": {"tags": "sum"}}) == [
        "p.yaml:split.merge.tags: Input should be 'first', 'vote', 'union', 'min', 'max' or "
        "'concat'"
    ]
    assert problems(**{"model.max_input_tokens": 10, "split.overlap_chars": -1}) == [
        "p.yaml:model.max_input_tokens: Input should be greater than or equal to 64",
        "p.yaml:split.overlap_chars: Input should be greater than or equal to 0",
    ]


def test_the_local_models_limit_is_its_context_less_the_answers_room(pipeline: Path) -> None:
    def limit(**overrides: Any) -> tuple[int, str] | None:
        config = load_pipeline(pipeline, {"model.provider": "local", **overrides})
        found = input_limit(config, get_provider(config))
        return None if found is None else (found.tokens, found.source)

    assert limit(**{"model.max_input_tokens": None, "model.max_tokens": 256}) == (
        1760,
        "the model's context (model.local.context 2048 less 256 for the answer and 32 for the "
        "chat template)",
    )
    # a max_tokens written for a hosted model leaves the input half the window at least
    assert limit(**{"model.max_input_tokens": None, "model.max_tokens": 4096})[0] == 992  # type: ignore[index]
    assert limit(**{"model.max_tokens": 256}) == (160, "model.max_input_tokens")
    config = load_pipeline(pipeline, {"model.max_input_tokens": None})
    assert input_limit(config, get_provider(config)) is None


def test_a_ledger_written_before_parts_gains_the_columns_in_place(pipeline: Path) -> None:
    extract.run_pipeline(pipeline, source=[{"id": 1, "text": PAGES[0]}])
    with duckdb.connect("out/r.duckdb") as con:
        # the tables as an older version wrote them
        con.execute("ALTER TABLE invoices DROP COLUMN _parts")
        con.execute("ALTER TABLE invoices_errors DROP COLUMN _parts")
        con.execute("ALTER TABLE _extract_cache DROP COLUMN parts")
    summary = extract.run_pipeline(
        pipeline, source=[{"id": 1, "text": PAGES[0]}, {"id": 2, "text": TEXT}]
    )
    assert (summary.rows_skipped, summary.rows_ok) == (1, 1)
    db = Path("out/r.duckdb")
    assert rows(db, "SELECT id, _parts FROM invoices ORDER BY id") == [
        {"id": 1, "_parts": None},
        {"id": 2, "_parts": 3},
    ]
    cached = "SELECT parts, count(*) AS n FROM _extract_cache GROUP BY parts ORDER BY parts"
    assert rows(db, cached) == [
        {"parts": 1, "n": 3},  # row 2's parts
        {"parts": 3, "n": 1},  # row 2
        {"parts": None, "n": 1},  # row 1, cached before the column came in
    ]
    # extended, not archived out of the way
    tables = rows(
        db, "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'inv%'"
    )
    assert sorted(t["table_name"] for t in tables) == ["invoices", "invoices_errors"]


def test_a_journaled_split_row_keeps_its_parts(tmp_path: Path) -> None:
    from extract.ledger.journal import Journal
    from extract.results import RowResult
    from extract.schema import load_model

    (tmp_path / "m3.py").write_text(SCHEMA)
    model = load_model("m3.py:Invoice", tmp_path)
    journal = Journal(tmp_path / "x.duckdb")
    instance = model.model_validate(blank(number="N-1"))
    journal.append(RowResult(key=1, prompt_hash="p", instance=instance, parts=4))
    journal.append(RowResult(key=2, prompt_hash="p", error_class="InputTooLong", message="m"))
    journal.close()
    replayed = sorted(journal.replay(model), key=lambda r: r.key)
    assert [(r.key, r.parts, r.instance) for r in replayed] == [(1, 4, instance), (2, 1, None)]


def test_batch_mode_sends_the_parts_in_one_batch_and_merges_the_same_answer(
    pipeline: Path, server: ServerThread
) -> None:
    server.configure(answer_from_text=True, batch_step_s=0.02)
    batch = {
        "run.mode": "batch",
        "model.batch_url": server.base_url + "/batches",
        "run.batch_poll_s": 0.05,
    }
    source = [{"id": 1, "text": TEXT}, {"id": 2, "text": PAGES[0]}]
    summary = extract.run_pipeline(pipeline, batch, source=source, wait=True)
    assert (summary.status, summary.rows_ok, summary.requests) == ("completed", 2, 4)
    stats = server.stats()["batches"]
    assert (stats["created"], stats["lines_submitted"]) == (1, 4)
    query = "SELECT id, number, total, tags, note, vendor, lines, _parts FROM invoices ORDER BY id"
    in_batch = rows(Path("out/r.duckdb"), query)
    extract.run_pipeline(pipeline, {"output.path": "out/s.duckdb"}, source=source)
    assert in_batch == rows(Path("out/s.duckdb"), query)
    assert [r["_parts"] for r in in_batch] == [3, 1]


def test_plan_counts_the_input_of_every_part(pipeline: Path) -> None:
    from extract.plan import make_plan
    from extract.runner.rows import CHARS_PER_TOKEN

    source = [{"id": 1, "text": TEXT}]
    with prepare(load_pipeline(pipeline), rows=source) as p:
        ((row,),) = list(p.rows())
        assert row.parts is not None and len(row.parts) == 3
        schema_chars = len(json.dumps(p.compiled.response_format))
        want = sum((part.chars + schema_chars) // CHARS_PER_TOKEN for part in row.parts)
    with prepare(load_pipeline(pipeline), rows=source) as p:
        plan = make_plan(p)
    assert (plan.rows_todo, plan.input_tokens) == (1, want)
    # the parts carry the template three times and the overlaps: more than the row alone
    assert want > (row.chars + schema_chars) // CHARS_PER_TOKEN


def test_the_readme_example_is_a_valid_pipeline_section(pipeline: Path) -> None:
    import yaml

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("## Long inputs", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    data = yaml.safe_load(block)
    config = load_pipeline(
        pipeline,
        {"model.max_input_tokens": data["model"]["max_input_tokens"], "split": data["split"]},
    )
    assert config.model.max_input_tokens == 6000
    assert config.split.model_dump() == {
        "column": "text",
        "overlap_chars": 200,
        "max_parts": 50,
        "merge": {"invoice_date": "min", "notes": "concat"},
    }


LOCAL_SCHEMA = """\
from pydantic import BaseModel


class Attendees(BaseModel):
    names: list[str]
"""

LOCAL_PIPELINE = """\
name: notes
source: {type: python, key: id}
schema: a.py:Attendees
prompt:
  system: List the full names of the people the notes say attended. Copy each name exactly.
  user: "Notes:\\n{text}"
model:
  provider: local
  max_tokens: 128
  local: {context: 512}
run: {max_attempts: 2}
output: {type: duckdb, path: out/notes.duckdb, table: notes}
"""

ATTENDEES = ["Anna Berg", "Tom Walsh", "Maria Lopez", "Kenji Sato"]


@pytest.mark.local
def test_a_long_input_is_split_to_fit_the_local_models_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real local model with a 512-token context: a text of about 1,000 tokens is sent in
    parts that each fit, instead of one request the server would refuse."""
    import os

    import extract.providers.local as local

    if local.prepared() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but the local model is not prepared; run make local")
        pytest.skip("the local model is not prepared; run: make local")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(LOCAL_SCHEMA)
    (tmp_path / "p.yaml").write_text(LOCAL_PIPELINE)
    paragraphs = [
        f"{name} attended the planning meeting and took notes. "
        + "The discussion went on for a while about the budget, the schedule, the vendors, "
        "the office move and the travel policy, and nothing was decided. " * 4
        for name in ATTENDEES
    ]
    text = "\n\n".join(paragraphs)
    assert tokens(text_units(text)) > 512  # the whole text alone is over the context
    summary = extract.run_pipeline("p.yaml", source=[{"id": 1, "text": text}])
    assert (summary.rows_ok, summary.rows_failed) == (1, 0)
    ((got,),) = [
        rows(Path("out/notes.duckdb"), "SELECT names, _parts, _requests, _prompt_tokens FROM notes")
    ]
    # the limit: 512 less 128 for the answer and 32 for the template: 352 tokens a request
    assert got["_parts"] == 4
    assert got["_prompt_tokens"] / got["_requests"] <= 352
    # each part names its one attendee; the union keeps them in the text's order
    assert got["names"] == ATTENDEES


def test_a_merged_value_keeps_its_parts_grounding_and_confidence(pipeline: Path) -> None:
    """Each value is grounded where its own part found it (page 3's 99.5, not page 1's), with
    that part's confidence: the same as the part's text extracted as a row of its own."""
    text = TEXT.replace(FILLER, "The pallet weighs 99.5 kg. " + FILLER, 1)
    first, last = text.index("99.5"), text.rindex("99.5")
    assert first < len(PAGES[0]) < last  # page 1 mentions it; page 3 states it
    trust = {"run.confidence": True}
    with prepare(load_pipeline(pipeline, trust), rows=[{"id": 1, "text": text}]) as p:
        ((row,),) = list(p.rows())
    assert row.parts is not None and len(row.parts) == 3
    third = row.parts[2]
    extract.run_pipeline(pipeline, trust, source=[{"id": 1, "text": text}])
    alone_db = {**trust, "output.path": "out/alone.duckdb"}
    piece = text[third.start : third.end]
    extract.run_pipeline(pipeline, alone_db, source=[{"id": 1, "text": piece}])
    query = "SELECT _grounding, _confidence, _min_confidence, _ungrounded, _parts FROM invoices"
    (split,) = rows(Path("out/r.duckdb"), query)
    (alone,) = rows(Path("out/alone.duckdb"), query)
    assert (split["_parts"], alone["_parts"]) == (3, 1)
    assert split["_grounding"]["total"] == {
        "status": "exact", "column": "text", "start": last, "end": last + 4,
    }  # fmt: skip
    assert alone["_grounding"]["total"]["start"] + third.start == last
    # the same request, the same made-up token probabilities: the part's confidence
    assert split["_confidence"]["total"] == alone["_confidence"]["total"]
    assert isinstance(split["_confidence"]["total"], float)
    # lines: X1 from part 2, Y2 from part 3 (its second item there too)
    assert split["_confidence"]["lines"][1] == alone["_confidence"]["lines"][1]
    y2 = text.index("Y2")
    assert split["_grounding"]["lines"][1]["sku"]["start"] == y2
    # the note joins two parts' notes: no one part's confidence, and not in the text as a whole
    assert split["_confidence"]["note"] is None
    assert split["_grounding"]["note"]["status"] == "none"
    leaves = [v for v in _floats(split["_confidence"])]
    assert split["_min_confidence"] == min(leaves)
    assert split["_ungrounded"] == 1


def _floats(tree: Any) -> list[float]:
    if isinstance(tree, float):
        return [tree]
    if isinstance(tree, dict):
        return [f for v in tree.values() for f in _floats(v)]
    if isinstance(tree, list):
        return [f for v in tree for f in _floats(v)]
    return []


def test_a_401_during_a_split_row_stops_the_run_and_records_nothing_for_it(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from extract.errors import RunStopped

    monkeypatch.setenv("SPLIT_TEST_KEY", "sk-wrong")
    with pytest.raises(RunStopped):
        extract.run_pipeline(pipeline, source=[{"id": 1, "text": TEXT}])
    db = Path("out/r.duckdb")
    assert rows(db, "SELECT count(*) AS n FROM invoices") == [{"n": 0}]
    assert rows(db, "SELECT count(*) AS n FROM invoices_errors") == [{"n": 0}]
    assert rows(db, "SELECT status, rows_ok, rows_failed FROM _extract_runs") == [
        {"status": "stopped", "rows_ok": 0, "rows_failed": 0}
    ]


def test_a_merged_answer_that_does_not_validate_is_merge_failed(pipeline: Path) -> None:
    # each part gives two tags; their union, three, is more than the schema allows
    schema = SCHEMA.replace(
        "from pydantic import BaseModel", "from pydantic import BaseModel, Field"
    )
    Path("m.py").write_text(
        schema.replace("tags: list[str]", "tags: list[str] = Field(max_length=2)")
    )
    summary = extract.run_pipeline(pipeline, source=[{"id": 1, "text": TEXT}])
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (0, 1, 3)
    (err,) = rows(
        Path("out/r.duckdb"), "SELECT _error_class, _message, _raw_output FROM invoices_errors"
    )
    assert err["_error_class"] == "MergeFailed"
    assert err["_message"] == (
        "the merged answer of 3 parts does not validate: tags: List should have at most 2 items "
        "after validation, not 3"
    )
    assert json.loads(err["_raw_output"])["tags"] == ["a", "b", "c"]


def test_parts_answered_before_are_not_paid_for_again(pipeline: Path, server: ServerThread) -> None:
    bad = TEXT.replace('{"sku": "X1", "qty": 2}]\n@first', '{"sku": "X1", "qty": "many"}]\n@first')
    first = extract.run_pipeline(pipeline, source=[{"id": 1, "text": bad}])
    # part 2 is asked twice and fails; parts 1 and 3 are answered and cached all the same
    assert (first.rows_failed, first.requests) == (1, 4)
    db = Path("out/r.duckdb")
    assert rows(db, "SELECT count(*) AS n, max(parts) AS parts FROM _extract_cache") == [
        {"n": 2, "parts": 1}
    ]
    retried = extract.run_pipeline(pipeline, source=[{"id": 1, "text": bad}], retry_errors=True)
    assert (retried.rows_failed, retried.requests) == (1, 2)  # part 2 only
    (err,) = rows(db, "SELECT _requests, _attempts, _message FROM invoices_errors")
    assert (err["_requests"], err["_attempts"]) == (2, 2)
    assert err["_message"].startswith("part 2 of 3 (characters 238-524 of column 'text'): ")
    # a changed merge asks nothing: every part's answer is in the cache
    good = extract.run_pipeline(pipeline, source=[{"id": 2, "text": TEXT}])
    assert (good.rows_ok, good.requests) == (1, 3)
    changed = extract.run_pipeline(
        pipeline,
        {"split.merge": {"total": "min", "note": "first"}},
        source=[{"id": 2, "text": TEXT}],
    )
    assert (changed.rows_ok, changed.requests, changed.rows_cached) == (1, 0, 0)
    assert server.stats()["total_requests"] == 4 + 2 + 3
    assert rows(db, "SELECT note, total, _parts, _requests, _cost_usd FROM invoices") == [
        {"note": "see page one", "total": 99.5, "_parts": 3, "_requests": 0, "_cost_usd": 0.0}
    ]
    # --full-refresh asks again
    fresh = extract.run_pipeline(pipeline, source=[{"id": 2, "text": TEXT}], full_refresh=True)
    assert fresh.requests == 3


def test_fifty_pages_are_extracted_by_pages_and_every_pages_items_kept(
    pipeline: Path, server: ServerThread
) -> None:
    pages = [f'--- page {n} ---\n@tags: ["p{n}"]\n' + (FILLER + "\n") * 3 for n in range(1, 51)]
    text = "".join(pages)
    summary = extract.run_pipeline(
        pipeline, {"model.max_input_tokens": 600}, source=[{"id": 1, "text": text}]
    )
    with prepare(
        load_pipeline(pipeline, {"model.max_input_tokens": 600}), rows=[{"id": 1, "text": text}]
    ) as p:
        ((row,),) = list(p.rows())
    assert row.parts is not None
    starts = [text.index(f"--- page {n} ---") for n in range(1, 51)]
    # six whole pages a part (about 81 tokens each, under 600 less the prompt and the room kept
    # for the overlap), each part opening with its first page's marker: no overlap at a page
    assert [part.start for part in row.parts] == starts[::6]
    assert [part.end for part in row.parts] == [s - 1 for s in starts[6::6]] + [len(text) - 1]
    n = len(row.parts)
    assert (n, summary.rows_ok, summary.requests) == (9, 1, 9)
    (got,) = rows(Path("out/r.duckdb"), "SELECT tags, _parts FROM invoices")
    assert got == {"tags": [f"p{i}" for i in range(1, 51)], "_parts": n}
