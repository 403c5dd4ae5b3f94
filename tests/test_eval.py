"""`extract eval`: match modes with exact values, then real runs (in-process, FakeTransport
answering chosen values) evaluated against labels in every format, through the library and
the CLI; the stored tables; calibration over hand-made trust columns; the shipped labels."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

import extract
from extract.cli import main
from extract.config import EvalFieldConfig, load_pipeline
from extract.evaluate.coerce import coerce, normalize_text
from extract.evaluate.labels import column_paths, read_labels
from extract.evaluate.match import Score, default_mode, make_matcher, prf
from extract.evaluate.paths import field_paths, slots_at, value_at
from extract.schema import columns_ddl, load_model, model_columns
from extract.sources import open_source
from extract.transport.fake import FakeTransport, Reply, chat_reply
from extract.trust.shape import Fields, Items, Leaf, model_shape

ROOT = Path(__file__).resolve().parent.parent


# 1. match modes, value by value


def check(
    mode: str, shape: Any, expected: Any, actual: Any, listed: bool = False, **options: Any
) -> Score:
    """Compare like `extract eval` does: both sides coerced to the field's type, then matched."""
    value_shape = Items(shape) if listed and not isinstance(shape, Items) else shape
    m = make_matcher(mode, shape, listed, EvalFieldConfig(**options))
    want = coerce(value_shape, expected)
    return m.compare(
        None if want is None else m.prepare(want), m.prepare_actual(coerce(value_shape, actual))
    )


TEXT, NUMBER, DATE = Leaf("str"), Leaf("decimal"), Leaf("date")


def test_normalize_text() -> None:
    # fullwidth letters (as OCR and some shops write them) fold to plain ones under NFKC
    fullwidth = "".join(chr(0xFF00 + ord(c) - 0x20) for c in "Full")
    assert normalize_text(f"  {fullwidth}-Width  BRAND,\tname. ") == "fullwidth brand name"
    assert normalize_text("O'Brien") == normalize_text("OBRIEN") == "obrien"
    assert normalize_text("Straße") == "strasse"  # casefold, not lower


def test_exact() -> None:
    assert check("exact", NUMBER, "12.50", Decimal("12.5")) == Score(1.0, True)
    assert check("exact", TEXT, "Anna", "anna") == Score(0.0, False)
    assert check("exact", Leaf("json"), '{"a": [1, 2]}', {"a": [1, 2]}).correct
    assert check("exact", Items(TEXT), '["a", "b"]', ["b", "a"]).correct is False  # in order


def test_normalized() -> None:
    assert check("normalized", TEXT, "Anna  Berg.", "anna berg") == Score(1.0, True)
    assert check("normalized", TEXT, "Anna", "Ana") == Score(0.0, False)
    assert check("normalized", NUMBER, "12.50", Decimal("12.5")).correct  # as text: 12.5


def test_numeric_tolerances() -> None:
    assert check("numeric", NUMBER, "12.50", 12.5).correct
    assert not check("numeric", NUMBER, "12.51", Decimal("12.5")).correct
    assert check("numeric", NUMBER, "12.51", "12.50", tolerance=0.01).correct
    assert not check("numeric", NUMBER, "12.52", "12.50", tolerance=0.01).correct
    assert check("numeric", NUMBER, 100, "101", relative=0.01).correct
    assert not check("numeric", NUMBER, 100, "101.5", relative=0.01).correct
    assert not check("numeric", TEXT, "12", "twelve").correct  # an unreadable actual is wrong


def test_date() -> None:
    assert check("date", DATE, "2024-03-05", dt.date(2024, 3, 5)).correct
    assert not check("date", DATE, "2024-03-05", dt.date(2024, 3, 6)).correct
    # an aware datetime of a plain datetime field is compared as UTC, as the table stores it
    aware = Leaf("datetime")
    assert check("date", aware, "2024-03-05T10:00:00+01:00", dt.datetime(2024, 3, 5, 9)).correct
    # a text field read as dates: a date and a datetime of the same day agree
    assert check("date", TEXT, "2024-03-05", "2024-03-05T12:00:00").correct


def test_enum_and_bool() -> None:
    status = Leaf("enum", ("open", "paid"))
    assert check("enum", status, "paid", "paid").correct
    assert not check("enum", status, "open", "paid").correct
    assert check("enum", Leaf("bool"), "true", True).correct
    assert check("enum", Leaf("bool"), "no", False).correct
    with pytest.raises(ValueError, match="'shipped' is not one of open, paid"):
        coerce(status, "shipped")


def test_fuzzy() -> None:
    # rapidfuzz's ratio of "anna berg" and "ana berg": 1 edit over 17 characters
    near = check("fuzzy", TEXT, "Anna Berg", "Ana Berg")
    assert (near.score, near.correct) == (pytest.approx(16 / 17), True)
    near = check("fuzzy", TEXT, "Anna Berg", "Ana Berg", threshold=0.95)
    assert (near.score, near.correct) == (pytest.approx(16 / 17), False)


def test_set() -> None:
    tags = Items(TEXT)
    assert check("set", tags, ["a", "b", "c"], ["B", "a", "d"]) == Score(2 / 3, False, 2, 1, 1)
    assert check("set", tags, '["b", "a"]', ["a", "b"]) == Score(1.0, True, 2, 0, 0)
    # a multiset: a repeated item counts twice
    assert check("set", tags, ["a", "a"], ["a"]) == Score(2 / 3, False, 1, 0, 1)
    assert check("set", tags, [], []) == Score(1.0, True)
    # items that are models: each leaf normalized by its type, the item compared whole
    item = Items(Fields((("sku", TEXT), ("qty", Leaf("int")))))
    assert check("set", item, '[{"sku": "x1", "qty": "1"}]', [{"sku": "X1", "qty": 1}]).correct
    assert not check("set", item, [{"sku": "x1", "qty": 2}], [{"sku": "X1", "qty": 1}]).correct
    # a path through a list (`items.qty`): the list of every item's value
    assert check("set", Leaf("int"), "[1, 2]", [2, 1], listed=True).correct


def test_nulls() -> None:
    assert check("normalized", TEXT, None, None) == Score(1.0, True)
    assert check("normalized", TEXT, None, "a") == Score(0.0, False)
    assert check("normalized", TEXT, "a", None) == Score(0.0, False)
    assert check("set", Items(TEXT), None, []) == Score(0.0, False)
    assert check("set", Items(TEXT), ["a"], None) == Score(0.0, False, 0, 0, 1)


def test_prf_and_defaults() -> None:
    assert prf(0, 0, 0) == (1.0, 1.0, 1.0)
    assert prf(0, 0, 2) == (0.0, 0.0, 0.0)
    assert prf(3, 1, 0) == (0.75, 1.0, 2 * 0.75 / 1.75)
    assert [default_mode(s, False) for s in (TEXT, NUMBER, DATE, Leaf("bool"), Leaf("json"))] == [
        "normalized",
        "numeric",
        "date",
        "enum",
        "exact",
    ]
    assert default_mode(Items(TEXT), False) == default_mode(Leaf("int"), True) == "set"
    with pytest.raises(ValueError, match="mode set compares lists"):
        make_matcher("set", TEXT, False)
    with pytest.raises(ValueError, match="this field is a list"):
        make_matcher("normalized", Items(TEXT), False)


def test_paths_values_and_trust_slots() -> None:
    schema = Fields(
        (
            ("customer", Fields((("name", TEXT),))),
            ("items", Items(Fields((("sku", TEXT), ("tags", Items(TEXT)))))),
        )
    )
    paths = field_paths(schema)
    assert {p: (s.listed, s.is_model) for p, s in paths.items()} == {
        "customer": (False, True),
        "customer.name": (False, False),
        "items": (True, False),
        "items.sku": (True, False),
        "items.tags": (True, False),
    }
    row = {
        "customer": {"name": "A"},
        "items": [{"sku": "x", "tags": ["a"]}, {"sku": "y", "tags": ["b", "c"]}],
    }
    assert value_at(row, schema, ("customer", "name")) == "A"
    assert value_at(row, schema, ("items", "sku")) == ["x", "y"]
    assert value_at(row, schema, ("items", "tags")) == ["a", "b", "c"]
    confidence = {
        "customer": {"name": 0.9},
        "items": [{"sku": 0.5, "tags": [0.7]}, {"sku": 0.6, "tags": [0.8, 0.1]}],
    }
    assert slots_at(confidence, schema, ("items", "tags")) == [0.7, 0.8, 0.1]
    assert slots_at(confidence, schema, ("items",)) == [0.5, 0.7, 0.6, 0.8, 0.1]
    assert slots_at(None, schema, ("customer", "name")) == []


# 2. real runs in-process, then evaluated

SCHEMA = """\
import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel


class Customer(BaseModel):
    name: str
    email: str | None


class Item(BaseModel):
    sku: str
    qty: int


class Order(BaseModel):
    customer: Customer
    total: Decimal
    status: Literal["open", "paid"]
    placed: dt.date
    urgent: bool
    tags: list[str]
    items: list[Item]
"""

PIPELINE = """\
name: {name}
source: {{type: python, key: id}}
schema: m.py:Order
prompt:
  user: "Row {{id}}: {{text}}"
model: {{provider: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: null, seed: 7,
        max_tokens: 100}}
run: {{concurrency: 4, max_attempts: 1, max_retries: 0, backoff_s: 0.001, grounding: false}}
output: {{type: duckdb, path: out/{name}.duckdb, table: orders}}
"""


def order(
    name: str,
    total: str,
    status: str,
    day: int,
    urgent: bool,
    tags: list[str],
    items: list[tuple[str, int]],
    email: str | None = None,
) -> str:
    return json.dumps(
        {
            "customer": {"name": name, "email": email},
            "total": total,
            "status": status,
            "placed": f"2024-01-0{day}",
            "urgent": urgent,
            "tags": tags,
            "items": [{"sku": s, "qty": q} for s, q in items],
        }
    )


#: what the model answers, by row id (4: not JSON, so the row lands in the errors table)
ANSWERS = {
    1: order("Anna Berg", "12.50", "paid", 1, False, ["b", "a"], [("X1", 1)]),
    2: order("Ben Smith", "20.00", "paid", 2, True, ["c", "d"], [("X2", 3)]),
    3: order("Karla", "7.25", "paid", 3, False, [], []),
    4: "not json",
    6: order("Nobody", "1", "open", 6, False, [], []),
}
#: the truth: row 5 is not in the source (missing from the output), row 6 has no label
LABELS_CSV = """\
id,customer.name,customer.email,total,status,placed,urgent,tags,items
1,anna berg,,12.5,paid,2024-01-01,false,"[""a"",""b""]","[{""sku"":""x1"",""qty"":1}]"
2,Ben Smith,ben@x.example,20,open,2024-01-02,true,"[""c""]","[{""sku"":""X2"",""qty"":2}]"
3,Carla,,7.25,paid,2024-01-03,false,[],[]
4,Dora,,1,open,2024-01-04,false,[],[]
5,Emil,,1,open,2024-01-05,false,[],[]
"""
#: accuracy per field over the 5 labelled rows (4 and 5 count as wrong)
ACCURACY = {
    "customer.name": 0.4,  # 1, 2 right; 3 Karla
    "customer.email": 0.4,  # 1, 3 null = null; 2 missed
    "total": 0.6,
    "status": 0.4,  # 2 open -> paid
    "placed": 0.6,
    "urgent": 0.6,
    "tags": 0.4,  # 2 {c, d} against {c}
    "items": 0.4,  # 2 qty 3 against 2
}
OVERALL = 19 / 40


def run_rows(path: Path, answers: dict[int, str]) -> str:
    def handler(request: dict[str, Any]) -> Reply:
        key = int(request["messages"][0]["content"].split(":")[0].removeprefix("Row "))
        return chat_reply(answers[key])

    rows = [{"id": i, "text": f"order {i}"} for i in answers]
    summary = extract.run_pipeline(path, None, rows, transport=FakeTransport(handler))
    assert (summary.rows_ok, summary.rows_failed) == (len(answers) - 1, 1)
    return summary.run_id


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(SCHEMA)
    (tmp_path / "labels.csv").write_text(LABELS_CSV)
    for name in ("t", "t2"):
        (tmp_path / f"{name}.yaml").write_text(PIPELINE.format(name=name))
    return tmp_path


@pytest.fixture
def run_id(project: Path) -> str:
    return run_rows(project / "t.yaml", ANSWERS)


def accuracies(result: extract.EvalResult) -> dict[str, float]:
    return {p: f.accuracy for p, f in result.fields.items()}


def test_evaluate_pipeline_against_a_csv(project: Path, run_id: str) -> None:
    result = extract.evaluate_pipeline("t.yaml", "labels.csv", store=False)
    assert (result.rows, result.compared, result.in_errors, result.missing) == (5, 3, 1, 1)
    assert result.unlabelled == 1 and result.run_id == run_id
    assert accuracies(result) == pytest.approx(ACCURACY)
    assert result.overall == pytest.approx(OVERALL)
    tags, items = result.fields["tags"], result.fields["items"]
    assert (tags.precision, tags.recall, tags.f1) == pytest.approx((0.75, 1.0, 6 / 7))
    assert (items.precision, items.recall, items.f1) == pytest.approx((0.5, 0.5, 0.5))
    assert result.fields["status"].confusion == {"open": {"paid": 1}, "paid": {"paid": 2}}
    assert result.fields["urgent"].confusion == {"false": {"false": 2}, "true": {"true": 1}}
    assert [
        (v.key, v.field, v.expected, v.actual, round(v.score, 3)) for v in result.mismatches
    ] == [
        ("2", "customer.email", "ben@x.example", None, 0.0),
        ("2", "status", "open", "paid", 0.0),
        ("2", "tags", ["c"], ["c", "d"], 0.667),
        ("2", "items", [{"sku": "X2", "qty": Decimal(2)}], [{"sku": "X2", "qty": Decimal(3)}], 0.0),
        ("3", "customer.name", "Carla", "Karla", 0.0),
    ]
    errors = {(v.key, v.status, v.error_class) for v in result.values if v.status != "compared"}
    assert errors == {("4", "in_errors", "MalformedOutput"), ("5", "missing", None)}
    assert result.calibration is None  # no trust values in this output


def test_every_labels_format_gives_the_same_result(project: Path, run_id: str) -> None:
    """JSONL with a `customer` object and native lists, Parquet and a DuckDB table of it."""
    jsonl = project / "labels.jsonl"
    with jsonl.open("w") as f:
        for line in LABELS_CSV.splitlines()[1:]:
            cells = next(csv.reader([line]))
            f.write(
                json.dumps(
                    {
                        "id": int(cells[0]),
                        "customer": {"name": cells[1], "email": cells[2] or None},
                        "total": float(cells[3]),
                        "status": cells[4],
                        "placed": cells[5],
                        "urgent": cells[6] == "true",
                        "tags": json.loads(cells[7]),
                        "items": json.loads(cells[8]),
                    }
                )
                + "\n"
            )
    con = duckdb.connect(str(project / "labels.duckdb"))
    con.execute(f"CREATE TABLE gold AS SELECT * FROM read_json('{jsonl}')")
    con.execute(f"COPY gold TO '{project / 'labels.parquet'}' (FORMAT parquet)")
    con.close()
    for labels, table in [
        ("labels.jsonl", None),
        ("labels.parquet", None),
        ("labels.duckdb:gold", None),
        ("labels.duckdb", "gold"),
    ]:
        result = extract.evaluate_pipeline("t.yaml", labels, labels_table=table, store=False)
        assert accuracies(result) == pytest.approx(ACCURACY), labels
        assert (result.compared, result.in_errors, result.missing) == (3, 1, 1)


def test_stored_tables(project: Path, run_id: str) -> None:
    extract.evaluate_pipeline("t.yaml", "labels.csv")
    extract.evaluate_pipeline("t.yaml", "labels.csv")  # appended, not replaced
    con = duckdb.connect(str(project / "out/t.duckdb"), read_only=True)
    try:
        summary = con.execute(
            "SELECT field, mode, n, accuracy, precision, recall, f1, run_id, labels "
            "FROM orders_eval WHERE evaluated_at = (SELECT max(evaluated_at) FROM orders_eval) "
            "ORDER BY field"
        ).fetchall()
        times = con.execute("SELECT count(DISTINCT evaluated_at), count(*) FROM orders_eval")
        assert times.fetchall() == [(2, 18)]
        rows = con.execute(
            "SELECT key, field, expected, actual, score, correct, confidence, grounding "
            "FROM orders_eval_rows WHERE evaluated_at = (SELECT max(evaluated_at) "
            "FROM orders_eval_rows) AND field IN ('tags', 'total') ORDER BY key, field"
        ).fetchall()
    finally:
        con.close()
    labels = str(project / "labels.csv")
    by_field = {row[0]: row for row in summary}
    assert list(by_field) == ["*", *sorted(ACCURACY)]
    assert by_field["*"] == (
        "*",
        None,
        40,
        pytest.approx(OVERALL),
        None,
        None,
        None,
        run_id,
        labels,
    )
    assert by_field["tags"] == (
        "tags",
        "set",
        5,
        0.4,
        0.75,
        1.0,
        pytest.approx(6 / 7),
        run_id,
        labels,
    )
    assert by_field["total"] == ("total", "numeric", 5, 0.6, None, None, None, run_id, labels)
    assert rows == [
        ("1", "tags", '["a", "b"]', '["b", "a"]', 1.0, True, None, None),
        ("1", "total", "12.5", "12.5", 1.0, True, None, None),
        ("2", "tags", '["c"]', '["c", "d"]', pytest.approx(2 / 3), False, None, None),
        ("2", "total", "20", "20", 1.0, True, None, None),
        ("3", "tags", "[]", "[]", 1.0, True, None, None),
        ("3", "total", "7.25", "7.25", 1.0, True, None, None),
        ("4", "tags", "[]", None, 0.0, False, None, None),  # in the errors table
        ("4", "total", "1", None, 0.0, False, None, None),
        ("5", "tags", "[]", None, 0.0, False, None, None),  # missing from the output
        ("5", "total", "1", None, 0.0, False, None, None),
    ]


def test_cli_table_json_and_min_accuracy(project: Path, run_id: str) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "labels.csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == (
        "t: 5 labelled rows: 3 compared, 1 in errors, 1 missing from output (both counted "
        "wrong); 1 output rows unlabelled (ignored)"
    )
    assert lines[3].split() == ["field", "mode", "n", "accuracy", "precision", "recall", "f1"]
    assert lines[4].split() == ["customer.name", "normalized", "5", "0.400"]
    assert lines[10].split() == ["tags", "set", "5", "0.400", "0.750", "1.000", "0.857"]
    assert lines[12].split() == ["overall", "40", "0.475"]
    mismatches = r.stdout.split("mismatches (5)\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split() for line in mismatches] == [
        ["key", "field", "expected", "actual", "score"],
        ["2", "customer.email", "ben@x.example", "null"],
        ["2", "status", "open", "paid"],
        ["2", "tags", '["c"]', '["c",', '"d"]', "0.667"],
        ["2", "items", '[{"sku":', '"X2",', '"qty":', "2}]", '[{"sku":', '"X2",', '"qty":', "3}]"],
        ["3", "customer.name", "Carla", "Karla"],
    ]
    assert "in the errors table, counted wrong (1): 4 (MalformedOutput)" in r.stdout
    assert "missing from output, counted wrong (1): 5" in r.stdout

    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "labels.csv", "--format", "json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert (data["rows"], data["overall"], data["in_errors"], data["missing"]) == (5, OVERALL, 1, 1)
    assert data["fields"]["total"] == {
        "accuracy": 0.6,
        "n": 5,
        "correct": 3,
        "mode": "numeric",
        "tolerance": 0.0,
        "relative": 0.0,
    }
    assert data["fields"]["tags"]["f1"] == pytest.approx(6 / 7)
    assert data["confusion"]["status"] == {"open": {"paid": 1}, "paid": {"paid": 2}}
    assert data["mismatches"][2] == {
        "key": "2",
        "field": "tags",
        "expected": ["c"],
        "actual": ["c", "d"],
        "score": pytest.approx(2 / 3),
        "confidence": None,
        "grounding": None,
    }
    assert data["error_rows"] == [{"key": "4", "error_class": "MalformedOutput"}]
    assert data["missing_keys"] == ["5"]
    assert data["unlabelled"] == 1 and data["run_id"] == run_id

    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "labels.csv", "--min-accuracy", "0.5"])
    assert r.exit_code == 6
    assert r.stderr == "extract: error: t: accuracy 0.475 is below the minimum 0.5\n"
    assert "t: overall 0.475 against the minimum 0.5: FAILED" in r.stdout
    # eval.min_accuracy from the pipeline file gates the same way; the flag wins
    with_min = ["eval", "t.yaml", "--labels", "labels.csv", "--set", "eval.min_accuracy=0.5"]
    assert runner.invoke(main, with_min).exit_code == 6
    assert runner.invoke(main, [*with_min, "--min-accuracy", "0.4"]).exit_code == 0


def test_labels_default_and_field_modes_from_the_pipeline_file(project: Path, run_id: str) -> None:
    path = project / "t.yaml"
    path.write_text(
        path.read_text()
        + (
            "eval:\n  labels: labels.csv\n  fields:\n"
            "    customer.name: {mode: fuzzy, threshold: 0.8}\n"
            "    items: {mode: exact}\n"
            "    total: {tolerance: 1}\n"
        )
    )
    result = extract.evaluate_pipeline(path, store=False)
    assert result.labels == str(project / "labels.csv")
    # Karla against Carla: 0.8 similar, enough at 0.8
    name = result.fields["customer.name"]
    assert (name.mode, name.options, name.accuracy) == ("fuzzy", {"threshold": 0.8}, 0.6)
    assert result.fields["total"].options == {"tolerance": 1.0, "relative": 0.0}
    assert result.fields["items"].mode == "exact"


def test_two_pipelines_side_by_side(project: Path, run_id: str) -> None:
    better = {
        **ANSWERS,
        2: order("Ben Smith", "20", "open", 2, True, ["c"], [("X2", 2)], email="ben@x.example"),
    }
    run_rows(project / "t2.yaml", better)
    runner = CliRunner()
    r = runner.invoke(main, ["eval", "t.yaml", "t2.yaml", "--labels", "labels.csv"])
    assert r.exit_code == 0, r.output
    table = r.stdout.split("\n\n")[1].splitlines()
    assert table[0].split() == ["field", "mode", "n", "t", "t2"]
    assert table[1].split() == ["customer.name", "normalized", "5", "0.400", "0.400"]
    assert table[2].split() == ["customer.email", "normalized", "5", "0.400", "0.600"]
    assert table[-1].split() == ["overall", "40", "0.475", "0.575"]
    assert "== t2 (t2.yaml)" in r.stdout
    r = runner.invoke(
        main,
        [
            "eval",
            "t.yaml",
            "t2.yaml",
            "--labels",
            "labels.csv",
            "--format",
            "json",
            "--min-accuracy",
            "0.5",
        ],
    )
    assert r.exit_code == 6  # t is below; t2 passes
    data = json.loads(r.stdout)
    assert [(p["pipeline"], p["overall"], p["passed"]) for p in data["pipelines"]] == [
        ("t", OVERALL, False),
        ("t2", 23 / 40, True),
    ]


def test_a_parquet_output_is_evaluated_from_its_ledger(project: Path) -> None:
    """A file output keeps its tables in the ledger beside it; a path through a list
    (`items.qty`) is the list of every item's value."""
    parquet = {"output.type": "parquet", "output.path": str(project / "out/t.parquet")}

    def handler(request: dict[str, Any]) -> Reply:
        key = int(request["messages"][0]["content"].split(":")[0].removeprefix("Row "))
        return chat_reply(ANSWERS[key])

    rows = [{"id": i, "text": f"order {i}"} for i in (1, 2, 3)]
    extract.run_pipeline("t.yaml", parquet, rows, transport=FakeTransport(handler))
    (project / "qty.csv").write_text('id,items.qty,items.sku\n1,[1],"[""x1""]"\n2,[2],[]\n')
    result = extract.evaluate_pipeline("t.yaml", "qty.csv", parquet)
    assert {p: (f.mode, f.accuracy) for p, f in result.fields.items()} == {
        "items.qty": ("set", 0.5),
        "items.sku": ("set", 0.5),
    }
    assert [(v.key, v.field, v.actual) for v in result.mismatches] == [
        ("2", "items.qty", [Decimal(3)]),
        ("2", "items.sku", ["X2"]),
    ]
    con = duckdb.connect(str(project / "out/t.ledger.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM orders_eval_rows").fetchall() == [(4,)]
    finally:
        con.close()


def test_bad_labels_are_one_line_errors(project: Path, run_id: str) -> None:
    runner = CliRunner()
    (project / "bad.csv").write_text("id,total,nope\n1,1,x\n")
    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "bad.csv"])
    assert r.exit_code == 2
    assert r.stderr == (
        f"extract: error: labels {project / 'bad.csv'}: column 'nope' is not a field of Order "
        "(fields: customer.name, customer.email, total, status, placed, urgent, tags, items, "
        "items.sku, items.qty)\n"
    )
    (project / "bad.csv").write_text("id,total\n1,1\n2,twelve\n")
    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "bad.csv"])
    assert (r.exit_code, r.stderr) == (
        2,
        f"extract: error: labels {project / 'bad.csv'}: row id=2, column total: 'twelve' is "
        "not a number\n",
    )
    (project / "bad.csv").write_text("id,total\n1,1\n1,2\n")
    r = runner.invoke(main, ["eval", "t.yaml", "--labels", "bad.csv"])
    assert (r.exit_code, r.stderr) == (
        2,
        f"extract: error: labels {project / 'bad.csv'}: duplicate key 'id': '1' (2 times)\n",
    )
    r = runner.invoke(main, ["eval", "t.yaml"])
    assert (r.exit_code, r.stderr) == (
        2,
        f"extract: error: {project / 't.yaml'}: no labels to evaluate against: pass --labels "
        "FILE or set eval.labels in the pipeline file\n",
    )
    r = runner.invoke(
        main,
        [
            "eval",
            "t.yaml",
            "--labels",
            "labels.csv",
            "--set",
            "eval.fields.nope.mode=exact",
            "--set",
            "eval.fields.total.mode=set",
        ],
    )
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        f"extract: error: {project / 't.yaml'}:eval.fields.nope: 'nope' is not a field of Order",
        f"extract: error: {project / 't.yaml'}:eval.fields.total: mode set compares lists; "
        "this field holds one value",
    ]


def test_a_run_holding_the_lock_fails_the_evaluation(project: Path, run_id: str) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)",
            str(project / "out/t.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        r = CliRunner().invoke(main, ["eval", "t.yaml", "--labels", "labels.csv"])
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert r.exit_code == 2
    assert r.stderr.startswith(
        f"extract: error: {project / 'out/t.duckdb'}: another extract run is writing this output"
    )
    assert len(r.stderr.splitlines()) == 1


# 3. calibration, over trust columns written by hand

TRUST_SCHEMA = """\
from pydantic import BaseModel


class Note(BaseModel):
    name: str
    tags: list[str]
"""
G = 'STRUCT(status VARCHAR, "column" VARCHAR, "start" INTEGER, "end" INTEGER)'


def test_calibration_and_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.py").write_text(TRUST_SCHEMA)
    (tmp_path / "n.yaml").write_text(
        "name: n\nsource: {type: python, key: id}\nschema: n.py:Note\nprompt: {user: x}\n"
        "output: {type: duckdb, path: n.duckdb, table: notes}\n"
    )
    (tmp_path / "gold.csv").write_text(
        'id,name,tags\n1,a,"[""x"",""y""]"\n2,b,"[""x""]"\n3,c,"[""x"",""y""]"\n4,d,[]\n'
    )
    con = duckdb.connect(str(tmp_path / "n.duckdb"))
    con.execute(
        f"CREATE TABLE notes (id BIGINT, name VARCHAR, tags VARCHAR[], "
        f"_confidence STRUCT(name DOUBLE, tags DOUBLE[]), _grounding STRUCT(name {G}, tags {G}[]))"
    )

    def g(status: str | None) -> dict[str, Any] | None:
        return (
            None
            if status is None
            else {"status": status, "column": None, "start": None, "end": None}
        )

    rows = [  # name right?, tags right?
        (
            1,
            "a",
            ["x", "y"],
            {"name": 0.99, "tags": [0.9, 0.6]},
            {"name": g("exact"), "tags": [g("exact"), g("fuzzy")]},
        ),  # yes, yes
        (
            2,
            "z",
            ["w"],
            {"name": 0.3, "tags": [0.97]},
            {"name": g("none"), "tags": [g("normalized")]},
        ),  # no, no
        (
            3,
            "q",
            ["y", "x"],
            {"name": 0.85, "tags": [1.0, 1.0]},
            {"name": g("none"), "tags": [g("none"), g("exact")]},
        ),  # no, yes
        (4, "d", [], {"name": None, "tags": []}, {"name": None, "tags": []}),  # yes, yes
    ]
    con.executemany("INSERT INTO notes VALUES (?, ?, ?, ?, ?)", rows)
    con.close()

    result = extract.evaluate_pipeline("n.yaml", "gold.csv")
    assert result.run_id is None and result.overall == 5 / 8
    cal = result.calibration
    assert cal is not None
    assert [(b.name, b.n, b.correct) for b in cal.bins] == [
        ("[0, 0.5)", 1, 0),
        ("[0.5, 0.8)", 1, 1),
        ("[0.8, 0.95)", 1, 0),
        ("[0.95, 0.99)", 1, 0),
        ("[0.99, 1]", 2, 2),
    ]
    # wrong: 2 name (0.3, none), 3 name (0.85, none), 2 tags (0.97, normalized)
    assert cal.flagged.to_dict() == {
        "wrong": 3,
        "flagged": 2 / 3,
        "low_confidence": 1 / 3,
        "ungrounded": 2 / 3,
    }
    data = result.to_dict()["calibration"]
    assert data["bins"][4] == {
        "bin": "[0.99, 1]",
        "low": 0.99,
        "high": 1.0,
        "n": 2,
        "correct": 2,
        "accuracy": 1.0,
    }
    text = extract.evaluate.render_text([result])
    assert "[0.5, 0.8)    1  1.000" in text
    assert (
        "flagged: of 3 wrong values, 66.7% have confidence < 0.8 or grounding 'none' "
        "(confidence < 0.8: 33.3%, grounding 'none': 66.7%)"
    ) in text
    con = duckdb.connect(str(tmp_path / "n.duckdb"), read_only=True)
    stored = con.execute(
        "SELECT key, field, confidence, grounding FROM notes_eval_rows ORDER BY key, field"
    ).fetchall()
    con.close()
    assert stored == [
        ("1", "name", 0.99, "exact"),
        ("1", "tags", 0.6, "fuzzy"),
        ("2", "name", 0.3, "none"),
        ("2", "tags", 0.97, "normalized"),
        ("3", "name", 0.85, "none"),
        ("3", "tags", 1.0, "none"),
        ("4", "name", None, None),
        ("4", "tags", None, None),
    ]


# 4. the shipped label files


def test_make_data_writes_these_labels_and_the_same_data(tmp_path: Path) -> None:
    """data/make_data.py run afresh writes every data file and every label file as committed."""
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data/make_data.py", tmp_path / "data")
    subprocess.run(
        [sys.executable, "data/make_data.py"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    made = sorted(
        p.relative_to(tmp_path / "data")
        for p in (tmp_path / "data").rglob("*")
        if p.is_file() and p.suffix != ".py"
    )
    assert {str(p) for p in made} >= {
        "labels/demo.csv",
        "labels/tickets.csv",
        "labels/invoices.jsonl",
        "labels/products.csv",
    }
    for p in made:
        assert (tmp_path / "data" / p).read_bytes() == (ROOT / "data" / p).read_bytes(), p


@pytest.mark.parametrize("name", ["demo", "tickets", "invoices", "products"])
def test_shipped_labels_fit_their_pipeline(tmp_path: Path, name: str) -> None:
    """Every label key is a row of the pipeline's data, every column a field, every value of
    its field's type: evaluated against an empty output, every labelled row is missing."""
    out = tmp_path / "out.duckdb"
    config = load_pipeline(ROOT / f"pipelines/{name}.yaml", {"output.path": str(out)})
    assert config.evaluation is not None and config.evaluation.labels is not None
    model = load_model(config.schema_ref, config.base_dir)
    labels = read_labels(
        config.base_dir / config.evaluation.labels, table=None, key=config.source.key
    )
    column_paths(labels, field_paths(model_shape(model)), model.__name__)
    source = open_source(config.source, base_dir=config.base_dir)
    try:
        keys = {
            str(k) for b in source.batches(1000) for k in b.column(config.source.key).to_pylist()
        }
    finally:
        source.close()
    assert {k for k, _ in labels.rows} <= keys
    assert len(labels.rows) >= len(keys) - 5  # the few hard cases are left out

    con = duckdb.connect(str(out))
    con.execute(
        f'CREATE TABLE "{config.table}" ("{config.source.key}" '
        f"{source.key_type}, {columns_ddl(model_columns(model))})"
    )
    con.close()
    result = extract.evaluate_pipeline(
        ROOT / f"pipelines/{name}.yaml", overrides={"output.path": str(out)}, store=False
    )
    assert (result.rows, result.missing, result.overall) == (len(labels.rows), len(labels.rows), 0)
