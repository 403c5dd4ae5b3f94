"""A peer: instructor over AsyncOpenAI in JSON-schema mode with max_retries=3 (four attempts).

instructor's JSON_SCHEMA mode sends `model_json_schema()` without `strict: true`, which a
strict-mode endpoint (and the test server) rejects, so the request carries extract's compiled
response_format through `extra_body`, which the openai SDK merges over the body: every peer asks
for the same schema. Validation and re-asking are instructor's own; transport retries are the
SDK's (`max_retries` on the client).

    python -m bench.peer_instructor --base-url URL --rows rows.csv --concurrency 64 --out o.json
"""

from __future__ import annotations

import asyncio
import logging

import instructor
import openai

from bench import common, schema, settings


async def main() -> None:
    args = common.arguments(__doc__ or "")
    # instructor logs every failed API call at ERROR; the counts are what the benchmark wants.
    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    rf = common.load_response_format(args.rows)
    clock = common.Clock()
    outcome = common.Outcome()
    raw = openai.AsyncOpenAI(
        base_url=args.base_url, api_key="unused", max_retries=settings.MAX_RETRIES, timeout=300
    )
    client = instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA)
    slots = asyncio.Semaphore(args.concurrency)

    async def one(row: dict[str, str]) -> None:
        try:
            await client.chat.completions.create(
                model=settings.MODEL,
                response_model=schema.BenchTicket,
                messages=common.first_turn(row),  # type: ignore[arg-type]
                max_retries=settings.MAX_ATTEMPTS - 1,
                seed=settings.SEED,
                temperature=settings.TEMPERATURE,
                max_tokens=settings.MAX_TOKENS,
                extra_body={"response_format": rf},
            )
            outcome.valid += 1
        except Exception as e:  # instructor's retry exceptions and the SDK's alike end the row
            outcome.failed(type(e).__name__)
        finally:
            slots.release()

    tasks: set[asyncio.Task[None]] = set()
    async with raw:
        for row in common.read_rows(args.rows):
            await slots.acquire()
            task = asyncio.create_task(one(row))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks))
    outcome.run_s = clock.seconds()
    common.write_outcome(args.out, outcome)


if __name__ == "__main__":
    asyncio.run(main())
