"""What token usage and training cost, from the dated table in `synthtune.money.catalog`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.usage import Usage
from synthtune.money.catalog import OPENAI_BATCH_DISCOUNT, is_fine_tuned, model_info


def inference_cost_usd(
    model: str, usage: Usage, *, batch: bool = False, fine_tuned: bool = False
) -> float | None:
    """List-price cost of the calls (at the Batch API's discount for batch calls), or None when the
    model is not in the table or has no price. `fine_tuned`: priced as a fine-tune of `model`."""
    info = model_info(model)
    if info is None or info.price is None:
        return None
    price = info.price
    if fine_tuned or is_fine_tuned(model):
        if price.fine_tuned_input is None or price.fine_tuned_output is None:
            return None
        input_price = price.fine_tuned_input
        cached_price = price.fine_tuned_cached_input
        output_price = price.fine_tuned_output
    else:
        input_price, cached_price, output_price = price.input, price.cached_input, price.output
    cached_price = input_price if cached_price is None else cached_price
    uncached = usage.input_tokens - usage.cached_input_tokens
    standard = (
        uncached * input_price + usage.cached_input_tokens * cached_price + usage.output_tokens * output_price
    ) / 1_000_000
    return standard * OPENAI_BATCH_DISCOUNT if batch else standard


def training_cost_usd(model: str, trained_tokens: int) -> float | None:
    info = model_info(model)
    if info is None or info.price is None or info.price.training is None:
        return None
    return trained_tokens * info.price.training / 1_000_000


class CostLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    model: str
    usage: Usage | None = None
    trained_tokens: int | None = None
    usd: float | None
    paid_but_lost: bool = Field(
        default=False,
        description="Model requests whose reply never arrived (a timeout, a lost connection, a 5xx after "
        "the provider may have worked), at their worst case: no provider reports what they used.",
    )


class RequestTotals(BaseModel):
    """Model requests and what they cost at list prices (priced ones only)."""

    model_config = ConfigDict(frozen=True)

    requests: int
    usd: float


class CostReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    lines: list[CostLine]

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines if line.usd is not None)

    def requests(self, *, paid_but_lost: bool) -> RequestTotals:
        """The model requests that were answered (paid_but_lost False) or paid for and lost (True)."""
        lines = [
            line for line in self.lines if line.usage is not None and line.paid_but_lost == paid_but_lost
        ]
        return RequestTotals(
            requests=sum(line.usage.requests for line in lines if line.usage is not None),
            usd=sum(line.usd for line in lines if line.usd is not None),
        )

    @property
    def unpriced(self) -> list[str]:
        """Models whose cost could not be priced, so `total_usd` leaves them out."""
        return sorted({line.model for line in self.lines if line.usd is None})
