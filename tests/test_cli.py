"""The command surface: help texts, exported names, the README's commands, `extract schema`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

import extract
from extract.cli import main
from extract.providers import local

ROOT = Path(__file__).resolve().parent.parent
EXTRACT = str(Path(sys.executable).parent / "extract")


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert main.commands[command].help
    assert "Usage: main " + command in result.output


def test_exported_names_are_complete() -> None:
    """Every name in __all__ resolves (the lazy ones on first use), and nothing else is public."""
    eager = {
        n
        for n, v in vars(extract).items()
        if not n.startswith("_") and not isinstance(v, type(extract))
    }
    assert eager - {"annotations", "typing"} <= set(extract.__all__)
    for name in extract.__all__:
        assert getattr(extract, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = extract.nope  # type: ignore[attr-defined]


def test_exit_codes_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    from extract.errors import ExitCode

    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| ", readme, re.M), code


def test_schema_command_json_and_text() -> None:
    r = subprocess.run(
        [EXTRACT, "schema", "schemas/demo.py:Contact", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    fmt = json.loads(r.stdout)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Contact" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    r = subprocess.run(
        [EXTRACT, "schema", "schemas.demo:Contact"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert '"urgent" BOOLEAN' in r.stdout and r.stdout.startswith("-- response_format\n")
    r = subprocess.run(
        [EXTRACT, "schema", "schemas/demo.py:Contact", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    # lengths are rewritten into patterns; nothing is refused, so the check passes
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["field", "action", "what", "happens", "fix"]
    assert lines[1].split()[:2] == ["Contact.name", "rewritten"]
    assert "refused" not in r.stdout


def test_schema_command_refuses_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from typing import Any\nfrom pydantic import BaseModel\n"
        "class M(BaseModel):\n    anything: Any\n"
    )
    r = subprocess.run(
        [EXTRACT, "schema", "m.py:M"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr.startswith("extract: error: ") and "anything" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = subprocess.run(
        [EXTRACT, "schema", "m.py:M", "--check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert (r.returncode, r.stderr) == (2, "")
    assert r.stdout.splitlines() == [
        "field       action   what happens                                   fix",
        "M.anything  refused  typing.Any cannot be expressed in strict mode  give the field a "
        "concrete type",
    ]


def test_validate_command(tmp_path: Path) -> None:
    r = subprocess.run(
        [EXTRACT, "validate", "pipelines/tickets.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "ok: 300 rows" in r.stdout


@pytest.mark.slow
def test_readme_commands() -> None:
    """The README's two set-up commands: `make demo` runs for real (the local model, when it is
    prepared or under CI); `make test` resolves (it is what is running this test, so it is dry-run
    here and run for real by .ci/run)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up: two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    ci = (ROOT / ".ci/run").read_text()
    assert "make local" in ci and "make test" in ci
    dry = subprocess.run(["make", "-n", "test"], capture_output=True, text=True, cwd=ROOT)
    assert dry.returncode == 0 and "pytest" in dry.stdout
    if local.prepared() is None and not os.environ.get("CI"):
        pytest.skip("make demo runs the local model, which is not prepared: run make local")
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    (ROOT / "out/demo.duckdb").unlink(missing_ok=True)
    r = subprocess.run(
        ["make", "demo"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )
    assert r.returncode == 0, r.stderr[-2000:]
    con = duckdb.connect(str(ROOT / "out/demo.duckdb"), read_only=True)
    try:
        keys = con.execute(
            "select id from contacts union all select id from contacts_errors order by id"
        ).fetchall()
        assert keys == [(i,) for i in range(1, 11)]
        assert con.execute("select distinct _model from contacts").fetchall() == [
            ("qwen2.5-coder-1.5b-instruct-q4_k_m",)
        ]
        # confidence was asked for and the local model gives it; every row is grounded
        nulls = con.execute(
            "select count(*) filter (_min_confidence is null), count(*) filter "
            "(_ungrounded is null) from contacts"
        ).fetchall()
        assert nulls == [(0, 0)]
        (evaluated,) = con.execute(
            "select count(*) from contacts_eval where field = '*'"
        ).fetchone()
        assert evaluated == 1
    finally:
        con.close()
    assert "local model ready: " in r.stdout and "topics" in r.stdout
    # the eval table against the demo's labels, then the report's path
    assert "\noverall " in r.stdout and "calibration" in r.stdout
    assert f"{ROOT}/out/contacts_report.html\n" in r.stdout
    assert (ROOT / "out/contacts_report.html").is_file()


@pytest.mark.slow
def test_readme_library_example_runs_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Python block, as it stands: a polars DataFrame through the test server."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## From Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    out = ROOT / "out/tickets_from_python.duckdb"
    out.unlink(missing_ok=True)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("{'status': 'completed', 'rows_ok': 20, 'requests': 20, 'cost_usd': ")
    con = duckdb.connect(str(out), read_only=True)
    try:
        keys = [k for (k,) in con.execute("select id from tickets order by id").fetchall()]
    finally:
        con.close()
    first = pl.read_csv(ROOT / "data/tickets.csv").head(20)
    assert keys == sorted(first["id"].to_list())
