from __future__ import annotations

from pathlib import Path

import pytest

from extract.config import load_pipeline, parse_override
from extract.errors import ConfigError
from extract.providers import get_provider

GOOD = """\
name: tickets
source: {type: csv, path: data/t.csv, key: id}
schema: schemas.ticket:SupportTicket
prompt: {user: "Ticket: {text}"}
output: {type: duckdb, path: out/r.duckdb, table: tickets}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_pipeline(write(tmp_path, GOOD))
    assert cfg.source.path == tmp_path / "data/t.csv"
    assert cfg.output.path == tmp_path / "out/r.duckdb"
    assert cfg.model.name == "qwen/qwen3.5-27b"
    assert cfg.model.base_url == "https://openrouter.ai/api/v1"
    assert get_provider(cfg).name == "openrouter"
    assert cfg.model.seed == 42
    assert cfg.model.prices() == (0.195, 1.56)
    assert cfg.run.concurrency == 16
    assert cfg.table == "tickets"


def test_overrides_parse_as_yaml_scalars(tmp_path: Path) -> None:
    cfg = load_pipeline(
        write(tmp_path, GOOD),
        [
            "run.concurrency=128",
            "model.base_url=http://127.0.0.1:8787/v1",
            "model.reasoning={effort: low}",
            "model.temperature=0.5",
        ],
    )
    assert cfg.run.concurrency == 128
    assert cfg.model.base_url == "http://127.0.0.1:8787/v1"
    assert get_provider(cfg).name == "openai"
    assert cfg.model.reasoning == {"effort": "low"}
    assert cfg.model.temperature == 0.5


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    p = write(
        tmp_path, GOOD.replace("type: csv", "type: xlsx") + "extra_key: 1\nrun: {concurrency: 0}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    assert e.value.problems == [
        f"{p}:source.type: Input should be 'csv', 'parquet', 'jsonl', 'duckdb' or 'python'",
        f"{p}:run.concurrency: Input should be greater than or equal to 1",
        f"{p}:extra_key: Extra inputs are not permitted",
    ]


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    p = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:2:1: invalid YAML: "):
        load_pipeline(p)


def test_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_pipeline(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="cannot read the pipeline file"):
        load_pipeline(tmp_path / "nope.yaml")


def test_duckdb_source_shape(tmp_path: Path) -> None:
    text = GOOD.replace(
        "{type: csv, path: data/t.csv, key: id}",
        "{type: duckdb, key: id, table: t, query: select 1}",
    )
    with pytest.raises(ConfigError, match="exactly one of 'table' or 'query'"):
        load_pipeline(write(tmp_path, text))


@pytest.mark.parametrize("item", ["novalue", "=1", "a..b=1"])
def test_bad_override(item: str) -> None:
    with pytest.raises(ConfigError, match=r"expected KEY\.PATH=VALUE"):
        parse_override(item)


def test_override_into_scalar_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'name' is not a mapping"):
        load_pipeline(write(tmp_path, GOOD), ["name.x=1"])


def test_config_hash_changes_with_content(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    a = load_pipeline(p).config_hash()
    assert a == load_pipeline(p).config_hash()
    assert a != load_pipeline(p, ["model.seed=7"]).config_hash()
