# The two set-up commands of the README: `make demo` runs the demo pipeline, `make test` the tests.
# Both create the virtual environment from pyproject.toml on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/extract: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/extract

demo: $(BIN)/extract
	$(BIN)/extract run pipelines/tickets.yaml --set model.provider=mock --set output.path=out/demo.duckdb
	$(BIN)/python -c "import duckdb; duckdb.connect('out/demo.duckdb', read_only=True).sql('select category, priority, count(*) as tickets, sum(_attempts) as attempts from tickets group by all order by tickets desc limit 10').show()"

lint: $(BIN)/extract
	$(BIN)/ruff check extract tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
