"""What every client in the benchmark sends: prompt, model settings, attempt bounds.

Standard library only: the orchestrating process imports it and must stay small (measure.py).
"""

from __future__ import annotations

from pathlib import Path

#: the Pydantic model's file, as the pipeline file names it
SCHEMA_FILE = Path(__file__).resolve().parent / "schema.py"
SCHEMA_CLASS = "BenchTicket"

#: the prompt every client renders; only string columns are used, so a CSV read by DuckDB (extract)
#: and by the csv module (the other clients) renders to the same bytes
SYSTEM = (
    "You classify customer support messages for an online shop. "
    "Use null when a field is absent; never invent order numbers, names or amounts."
)
USER = "Subject: {subject}\nMessage:\n{body}"
MODEL = "qwen/qwen3.5-27b"
SEED = 42
TEMPERATURE = 0.0
MAX_TOKENS = 4096
#: attempts per row (first request + re-asks) and transport retries per attempt, for every client
MAX_ATTEMPTS = 4
MAX_RETRIES = 6
BACKOFF_S = 0.5
