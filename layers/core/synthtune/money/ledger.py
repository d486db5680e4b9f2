"""The run's spending, live, and the budget it may not pass.

Every paid call reserves its worst case first (its prompt's tokens plus the most it may write, at list
price) and settles to what it really cost once the reply is in. Reservations and spending are two
numbers on the run's DynamoDB item, changed by atomic conditional updates, so shards in many Lambda
invocations share one budget: a reservation that would take `committed_usd` past `budget_usd` is
refused and the caller raises `BudgetExceeded` before sending anything. Without a budget nothing is
reserved and calls are not written one by one (the shards' totals are enough).
"""

from __future__ import annotations

from synthtune.contracts.errors import BudgetExceeded
from synthtune.records.runs import RunStore

COMMITTED = "committed_usd"
SPENT = "spent_usd"


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

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost (0 for a request that failed)."""
        if self.budget_usd is None:
            return
        self._runs.add(self._run_id, {COMMITTED: actual_usd - reserved_usd, SPENT: actual_usd})

    def _refusal(self, worst_case_usd: float, what: str) -> str:
        record = self._runs.get(self._run_id) or {}
        spent = float(record.get(SPENT, 0.0))
        committed = float(record.get(COMMITTED, 0.0))
        return (
            f"{what} could cost up to ${worst_case_usd:.4f}, and the run has spent ${spent:.4f} with "
            f"${committed - spent:.4f} more reserved by requests in flight: that would pass budget_usd "
            f"${self.budget_usd:.2f}. Raise budget_usd to go on; everything answered so far is kept."
        )
