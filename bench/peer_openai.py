"""A peer: the openai SDK (AsyncOpenAI) with Pydantic validation, as a careful user writes it.

The SDK retries 408/429/5xx and dropped connections itself (`max_retries`, honouring Retry-After
when it is between 0 and 60 s exclusive, else its own backoff); unusable content is re-asked the
way extract does it, up to the same number of attempts, under an asyncio.Semaphore.

    python -m bench.peer_openai --base-url URL --rows rows.csv --concurrency 64 --out outcome.json
"""

from __future__ import annotations

import asyncio

import openai

from bench import common, schema, settings


async def main() -> None:
    args = common.arguments(__doc__ or "")
    rf = common.load_response_format(args.rows)
    clock = common.Clock()
    outcome = common.Outcome()
    client = openai.AsyncOpenAI(
        base_url=args.base_url, api_key="unused", max_retries=settings.MAX_RETRIES, timeout=300
    )
    slots = asyncio.Semaphore(args.concurrency)

    async def one(row: dict[str, str]) -> None:
        first = common.first_turn(row)
        messages = first
        try:
            for _ in range(settings.MAX_ATTEMPTS):
                outcome.requests += 1
                # Plain dicts, as users write them; the SDK's TypedDicts are for editors.
                completion = await client.chat.completions.create(  # type: ignore[call-overload]
                    model=settings.MODEL,
                    messages=messages,
                    response_format=rf,
                    seed=settings.SEED,
                    temperature=settings.TEMPERATURE,
                    max_tokens=settings.MAX_TOKENS,
                )
                message = completion.choices[0].message
                if message.refusal:
                    outcome.failed("Refusal")
                    return
                instance, problem = common.check_answer(message.content, schema.BenchTicket)
                if instance is not None:
                    outcome.valid += 1
                    return
                messages = common.reask(first, message.content, problem)
            outcome.failed("InvalidOutput")
        except openai.OpenAIError as e:
            outcome.failed(type(e).__name__)
        finally:
            slots.release()

    tasks: set[asyncio.Task[None]] = set()
    async with client:
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
