"""`run.budget_usd`: stop before the next request could take the run past the budget.

Each request reserves its upper bound (its size at about 3 characters a token, the safe side of
the usual 4, plus `max_tokens` of output) until it is answered; what it actually cost is then
spent. A request whose reservation would pass the budget is not sent: BudgetExceeded.
"""

from __future__ import annotations

from ..errors import BudgetExceeded
from ..transport.base import Usage

__all__ = ["Budget"]

#: output tokens assumed for a request without max_tokens
UNBOUNDED_OUTPUT = 8192


class Budget:
    def __init__(
        self, limit_usd: float | None, prices: tuple[float, float] | None, schema_chars: int
    ):
        self.limit_usd = limit_usd
        self.prices = prices
        self.schema_chars = schema_chars
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, body_chars: int, max_tokens: int | None) -> float:
        """Reserve the most a request can cost; raises BudgetExceeded when it could pass."""
        if self.limit_usd is None or self.prices is None:
            return 0.0
        pin, pout = self.prices
        tokens_in = (body_chars + self.schema_chars) / 3
        estimate = (tokens_in * pin + (max_tokens or UNBOUNDED_OUTPUT) * pout) / 1e6
        if self.spent + self.reserved + estimate > self.limit_usd:
            raise BudgetExceeded(
                f"stopped before passing the budget of ${self.limit_usd:g}: ${self.spent:.4f} "
                f"spent, the next request could cost up to ${estimate:.4f}",
                budget_usd=self.limit_usd,
                spent_usd=self.spent,
            )
        self.reserved += estimate
        return estimate

    def release(self, reservation: float) -> None:
        self.reserved -= reservation

    def spend(self, usage: Usage) -> None:
        """Count a reply's cost, filling it in from the prices when the reply had none."""
        if usage.cost_usd is None and self.prices is not None:
            pin, pout = self.prices
            usage.cost_usd = (usage.prompt_tokens * pin + usage.completion_tokens * pout) / 1e6
        self.spent += usage.cost_usd or 0.0
