"""The run's spending, live, and the budget it may not pass.

Every paid call reserves its worst case first (its prompt's tokens plus the most it may write, at list
price) and settles to what it really cost once the reply is in. Reservations and spending are two
numbers on the run's DynamoDB item, changed by atomic conditional updates, so shards in many Lambda
invocations share one budget: a reservation that would take `committed_usd` past `budget_usd` is
refused and the caller raises `BudgetExceeded` before sending anything. Without a budget nothing is
reserved and answered calls are not written one by one (the shards' totals are enough).

A request whose outcome is unknown — a timeout, a connection lost after sending, a 5xx after the
provider may have worked — may have been billed in full, and no provider reports the usage of a reply
that never arrived. So it is "paid but lost": settled at its worst case (never at 0), counted as a
request, and written on the run's SPEND items with or without a budget, where the report finds it.
Nothing reconciles it down later: a chat completion cannot be read back, so it stays at worst case.
Only a request the provider certainly did not carry out (a 4xx refusal, a 429, a connection never made)
settles at 0. `budget_usd` is thereby an upper bound on what the run spends at list prices.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.errors import BudgetExceeded
from synthtune.contracts.usage import ChatPurpose, Usage
from synthtune.records.items import SPEND_PREFIX, SpendItem, SpendKind, spend_sk
from synthtune.records.runs import RunStore

COMMITTED = "committed_usd"
SPENT = "spent_usd"
PAID_REQUESTS = "paid_requests"


class SpendRecord(BaseModel):
    """Model requests paid for that the stages' own results do not count (one, or a run's sum)."""

    model_config = ConfigDict(frozen=True)

    kind: SpendKind
    spender: str = Field(description="Who sent them: `generation`, or `benchmark: <contestant>`.")
    purpose: ChatPurpose
    model: str
    usage: Usage
    usd: float | None = Field(description="At list price; None: the model has no price in the catalog.")

    @classmethod
    def from_item(cls, item: SpendItem) -> SpendRecord:
        return cls(
            kind=item.kind,
            spender=item.spender,
            purpose=item.purpose,
            model=item.model,
            usage=item.usage,
            usd=None if item.unpriced else item.usd,
        )

    def item(self) -> SpendItem:
        return SpendItem(
            kind=self.kind,
            spender=self.spender,
            purpose=self.purpose,
            model=self.model,
            **self.usage.model_dump(),
            usd=self.usd or 0.0,
            unpriced=self.usd is None,
        )


def spend_records(items: list[dict[str, Any]]) -> list[SpendRecord]:
    """The run's SPEND items (from all its DynamoDB items), one per kind, spender, purpose and model."""
    return [
        SpendRecord.from_item(SpendItem.from_item(item))
        for item in items
        if str(item["sk"]).startswith(SPEND_PREFIX)
    ]


class CostLedger:
    def __init__(self, runs: RunStore, run_id: str, budget_usd: float | None) -> None:
        self._runs = runs
        self._run_id = run_id
        self.budget_usd = budget_usd

    def reserve(self, worst_case_usd: float, what: str) -> float:
        """Reserve `worst_case_usd` against the budget (returns the amount to settle later)."""
        if self.budget_usd is None:
            return 0.0
        room = self.budget_usd - worst_case_usd
        if room < 0 or not self._runs.add(
            self._run_id, {COMMITTED: worst_case_usd}, not_above=(COMMITTED, room)
        ):
            raise BudgetExceeded(self._refusal(worst_case_usd, what))
        return worst_case_usd

    def settle(self, reserved_usd: float, actual_usd: float, *, requests: int = 0) -> None:
        """Replace a reservation by what the call really cost (0 for a request the provider certainly
        did not carry out); `requests`: the model requests it was."""
        if self.budget_usd is None:
            return
        amounts = {COMMITTED: actual_usd - reserved_usd, SPENT: actual_usd}
        if requests:
            amounts[PAID_REQUESTS] = requests
        self._runs.add(self._run_id, amounts)

    def settle_lost(self, reserved_usd: float, lost: SpendRecord) -> None:
        """A request whose outcome is unknown: recorded (budget or not) and, with a budget, settled at
        its worst case."""
        self.record(lost)
        self.settle(reserved_usd, lost.usd or 0.0, requests=lost.usage.requests)

    def record(self, spend: SpendRecord) -> None:
        """Add `spend` to the run's SPEND item for its kind, spender, purpose and model (budget or not)."""
        item = spend.item()
        self._runs.add(self._run_id, item.amounts(), sk=item.sk, labels=item.labels())

    def replace(self, spend: SpendRecord) -> None:
        """Set the run's SPEND item for `spend`'s kind, spender, purpose and model to `spend`, whatever it
        held: for a tally recomputed whole each time (what a contestant's checkpoints hold)."""
        item = spend.item()
        self._runs.put(self._run_id, item.sk, item)

    def remove(self, kind: SpendKind, spender: str, purpose: ChatPurpose, model: str) -> None:
        """Drop a SPEND item whose requests another record of the run now counts."""
        self._runs.delete(self._run_id, spend_sk(kind, spender, purpose, model))

    def _refusal(self, worst_case_usd: float, what: str) -> str:
        record = self._runs.get(self._run_id) or {}
        spent = float(record.get(SPENT, 0.0))
        in_flight = max(0.0, float(record.get(COMMITTED, 0.0)) - spent)  # never "-0.0000" from rounding
        return (
            f"{what} could cost up to ${worst_case_usd:.4f}, and the run has spent ${spent:.4f} with "
            f"${in_flight:.4f} more reserved by requests in flight: that would pass budget_usd "
            f"${self.budget_usd:.2f}. Raise budget_usd to go on; everything answered so far is kept."
        )
