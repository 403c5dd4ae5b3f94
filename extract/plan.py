"""`extract plan`: what a run would do and roughly what it would cost, before spending anything.

Rows are rendered and hashed exactly as a run does, and checked against the ledger, so the counts
(done, failed before, cached, to do) are the ones the run will meet. Tokens are estimates:
input at about four characters a token (messages plus the schema), output from the mean of earlier
outputs of the same schema when the ledger has some, else from the size of answers generated
from the schema. Reasoning tokens cannot be known in advance unless earlier outputs show them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .ledger.reader import Known, classify
from .pipeline import Pipeline
from .providers.testserver.fakegen import generate

__all__ = ["Plan", "make_plan"]

CHARS_PER_TOKEN = 4


@dataclass
class Plan:
    rows_total: int = 0
    rows_done: int = 0
    rows_failed_before: int = 0
    rows_cached: int = 0
    rows_todo: int = 0
    rows_input_errors: int = 0
    input_tokens: int = 0
    output_tokens_per_row: float = 0.0
    reasoning_tokens_per_row: float = 0.0
    output_basis: str = ""
    prices: tuple[float, float] | None = None
    #: the batch price as a share of the per-token price (model.batch_discount)
    batch_discount: float = 0.5
    #: requests per batch and the mode the pipeline runs in
    batch_max_requests: int = 5000
    mode: str = "sync"

    @property
    def output_tokens(self) -> int:
        return round((self.output_tokens_per_row + self.reasoning_tokens_per_row) * self.rows_todo)

    @property
    def cost_usd(self) -> float | None:
        if self.prices is None:
            return None
        pin, pout = self.prices
        return (self.input_tokens * pin + self.output_tokens * pout) / 1e6

    @property
    def batch_cost_usd(self) -> float | None:
        return None if self.cost_usd is None else self.cost_usd * self.batch_discount

    @property
    def batches(self) -> int:
        return -(-self.rows_todo // self.batch_max_requests)

    def lines(self) -> list[str]:
        if self.cost_usd is None or self.batch_cost_usd is None:
            cost = "unknown (set model.price)"
        else:
            chosen = {"sync": " <- run.mode", "batch": ""}
            cost = (
                f"sync ${self.cost_usd:.4f}{chosen[self.mode]}, batch ${self.batch_cost_usd:.4f} "
                f"in {self.batches} batch(es){' <- run.mode' if self.mode == 'batch' else ''}"
            )
        return [
            f"rows: {self.rows_total} in all: {self.rows_done} done, {self.rows_failed_before} "
            f"failed before (use --retry-errors), {self.rows_cached} from the cache, "
            f"{self.rows_todo} to request, {self.rows_input_errors} unreadable",
            f"estimated tokens: {self.input_tokens} in, {self.output_tokens} out "
            f"({self.output_tokens_per_row:.0f} a row + {self.reasoning_tokens_per_row:.0f} "
            f"reasoning; {self.output_basis})",
            f"estimated cost: {cost} for one attempt a row (re-asks add to it)",
        ]


def make_plan(
    pipeline: Pipeline,
    *,
    limit: int | None = None,
    full_refresh: bool = False,
    retry_errors: bool = False,
) -> Plan:
    """Count what a run would do; opens the ledger only when the output already exists."""
    compiled = pipeline.compiled
    cfg = pipeline.config
    plan = Plan(
        prices=pipeline.provider.prices(),
        batch_discount=cfg.model.batch_discount,
        batch_max_requests=cfg.run.batch_max_requests,
        mode=cfg.run.mode,
    )
    schema_chars = len(json.dumps(compiled.response_format))
    ledger = pipeline.open_ledger() if pipeline.output.ledger_path.exists() else None
    try:
        for batch in pipeline.rows(limit):
            if ledger is not None:
                states = ledger.reader.lookup(
                    [r.key for r in batch], [r.request_hash for r in batch]
                )
            else:
                states = [Known()] * len(batch)
            for row, known in zip(batch, states, strict=True):
                plan.rows_total += 1
                action = classify(known, full_refresh=full_refresh, retry_errors=retry_errors)
                if action == "skip":
                    plan.rows_done += 1
                elif action == "failed":
                    plan.rows_failed_before += 1
                elif action == "cached":
                    plan.rows_cached += 1
                elif row.error is not None:
                    plan.rows_input_errors += 1
                else:
                    plan.rows_todo += 1
                    # a long input split into parts: each part is a request of its own
                    for chars in [p.chars for p in row.parts] if row.parts else [row.chars]:
                        plan.input_tokens += (chars + schema_chars) // CHARS_PER_TOKEN
        observed = ledger.reader.observed(compiled.hash) if ledger is not None else None
    finally:
        if ledger is not None:
            ledger.close()
    if observed is not None:
        plan.output_tokens_per_row = observed.output_tokens
        plan.reasoning_tokens_per_row = observed.reasoning_tokens
        plan.output_basis = f"mean of {observed.rows} earlier outputs"
    else:
        samples = [len(json.dumps(generate(compiled.schema, i))) for i in range(20)]
        plan.output_tokens_per_row = sum(samples) / len(samples) / CHARS_PER_TOKEN
        plan.output_basis = "estimated from the schema; reasoning not included"
    return plan
