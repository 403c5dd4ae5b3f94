"""How many tokens a text will take, estimated without a tokenizer, and the input limit a
request must stay under.

The estimate is deliberately high, because a prompt over the limit fails (or is cut) while a
part smaller than needed only costs one more request. It counts in thirds of a token:

- a lower-case ASCII letter, a space or an ASCII punctuation mark: 1/3 of a token. English
  runs about 4 characters a token in the BPE vocabularies of current models (GPT-4o, Llama 3,
  Qwen 2.5), so 3 leaves a quarter in reserve for names, codes and typos;
- a capital letter: 2/3 of a token, since words in capitals split into pieces of two or three
  letters (`SCHOONMAAK` is five tokens to Qwen);
- a digit: a whole token. Qwen's tokenizer (the bundled local model's) writes every digit as a
  token of its own, and invoices are full of them;
- any other character (accented letters, CJK, symbols): a whole token, since CJK text takes
  about one token a character; an emoji (outside the Basic Multilingual Plane) two.

Each message adds MESSAGE_OVERHEAD_TOKENS for its chat-template markers. `bench/split_tokens.py`
compares the estimate with the local model's own token counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import PipelineConfig
    from ..providers.base import Provider

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "UNITS_PER_TOKEN",
    "InputLimit",
    "input_limit",
    "message_units",
    "text_units",
    "tokens",
]

#: the estimate counts in these fractions of a token (an ASCII letter is one unit)
UNITS_PER_TOKEN = 3
#: a chat template's role markers and separators around one message, in tokens
MESSAGE_OVERHEAD_TOKENS = 8
#: a local model's context also holds the template's start and the generation prompt
LOCAL_OVERHEAD_TOKENS = 32

_DIGITS = str.maketrans("", "", "0123456789")
_CAPITALS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def text_units(text: str) -> int:
    """The estimated size of `text` in units (UNITS_PER_TOKEN to a token). Additive: the units
    of a text are the sum of its pieces' units, so parts can be packed by adding them up."""
    n = len(text)
    if not n:
        return 0
    other = n - len(text.encode("ascii", "ignore"))  # characters outside ASCII
    # outside the Basic Multilingual Plane (emoji): two code units in UTF-16, often two tokens
    astral = len(text.encode("utf-16-le")) // 2 - n
    digits = n - len(text.translate(_DIGITS))
    capitals = n - len(text.translate(_CAPITALS))
    return n + 2 * (other + digits) + 3 * astral + capitals


def tokens(units: int) -> int:
    """Units rounded up to whole tokens."""
    return -(-units // UNITS_PER_TOKEN)


def message_units(messages: list[dict[str, Any]]) -> int:
    """The estimated size of chat messages in units: their text and each message's overhead.
    Image parts are not counted (their cost depends on the model's vision encoder)."""
    units = UNITS_PER_TOKEN * MESSAGE_OVERHEAD_TOKENS * len(messages)
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            units += text_units(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    units += text_units(part["text"])
    return units


class InputLimit:
    """The most input tokens (estimated) one request may carry, and where that number comes
    from, as an error message names it."""

    def __init__(self, limit: int, source: str):
        self.tokens = limit
        self.source = source

    @property
    def units(self) -> int:
        return self.tokens * UNITS_PER_TOKEN


def input_limit(config: PipelineConfig, provider: Provider) -> InputLimit | None:
    """`model.max_input_tokens`, or what the provider's context window leaves for the input
    (the local model: `model.local.context` less the answer's room and the template's
    overhead), whichever is smaller; None when neither applies."""
    m = config.model
    found: list[InputLimit] = []
    if m.max_input_tokens is not None:
        found.append(InputLimit(m.max_input_tokens, "model.max_input_tokens"))
    context = provider.context_tokens()
    if context is not None:
        # the answer's room: max_tokens, but never more than half the window (a max_tokens
        # written for the hosted model must not leave a local model no room for input)
        reply = min(m.max_tokens or context // 4, context // 2)
        # model.local.context is at least 256, so this leaves at least 96 tokens
        room = context - reply - LOCAL_OVERHEAD_TOKENS
        found.append(
            InputLimit(
                room,
                f"the model's context (model.local.context {context} less {reply} for the "
                f"answer and {LOCAL_OVERHEAD_TOKENS} for the chat template)",
            )
        )
    return min(found, key=lambda lim: lim.tokens) if found else None
