import threading

import pytest

from synthtune.engine.chat import with_requests_in_flight


def test_results_keep_item_order_and_concurrency_is_bounded() -> None:
    lock = threading.Lock()
    active = peak = 0
    gate = threading.Barrier(3)

    def ask(item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        if item < 3:
            gate.wait(timeout=5)  # the first three really are in flight together
        with lock:
            active -= 1
        return item * 10

    assert with_requests_in_flight(ask, list(range(12)), 3, "t") == [i * 10 for i in range(12)]
    assert peak == 3


def test_first_failure_cancels_what_was_not_sent() -> None:
    sent: list[int] = []

    def ask(item: int) -> int:
        sent.append(item)
        if item == 0:
            raise RuntimeError("rate limited")
        threading.Event().wait(0.05)
        return item

    with pytest.raises(RuntimeError, match="rate limited"):
        with_requests_in_flight(ask, list(range(50)), 2, "t")
    assert len(sent) < 10
