"""The shipped examples (schemas/, pipelines/, data/) run end to end against the test server, and
every row's answer is the one the server gave to *that* row's request (images included)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_run import extract

from extract.config import load_pipeline
from extract.pipeline import prepare
from extract.providers.testserver import ServerThread
from extract.providers.testserver.fakegen import expected_answer

#: subprocess runs of the real command: the slow tier (pytest -m "not slow" skips them)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "rows", "images"),
    [("tickets", 300, 0), ("invoices", 200, 0), ("products", 250, 50)],
)
def test_example_pipeline(tmp_path: Path, server: ServerThread, name: str, rows: int,
                          images: int) -> None:
    pipeline_file = ROOT / "pipelines" / f"{name}.yaml"
    overrides = [f"model.base_url={server.base_url}", "model.api_key_env=TEST_EXTRACT_KEY",
                 f"output.path={tmp_path / 'out.duckdb'}"]
    args = [a for o in overrides for a in ("--set", o)]
    r = extract("run", str(pipeline_file), *args)
    assert r.returncode == 0, r.stderr
    assert server.stats()["total_requests"] == rows

    config = load_pipeline(pipeline_file, overrides)
    pipeline = prepare(config)
    key = config.source.key
    con = duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True)
    try:
        cur = con.execute(f'select * from "{config.table}" order by 1')
        names = [d[0] for d in cur.description]
        table = {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
        fields = [c for c in names if c != key and not c.startswith("_")]
        with_images = 0
        for batch in pipeline.source.batches(500):
            for source_row in batch.to_pylist():
                messages = pipeline.prompt.messages(source_row, source_row[key])
                content = messages[-1]["content"]
                with_images += isinstance(content, list)
                body = {"messages": messages, "seed": config.model.seed,
                        "response_format": pipeline.compiled.response_format}
                want = pipeline.compiled.parse(expected_answer(body))
                got = {f: table[source_row[key]][f] for f in fields}
                # through JSON on both sides: the table's types (Decimal, date, MAP) vs the model's
                assert pipeline.compiled.model.model_validate(
                    json.loads(json.dumps(got, default=str))
                ) == want, source_row[key]
        assert with_images == images
        assert len(table) == rows
    finally:
        con.close()
        pipeline.close()
