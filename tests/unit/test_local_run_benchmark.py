"""The whole-run benchmark's reading of an execution history (benchmarks/local_run.py); nothing is timed."""

from __future__ import annotations

import json

from benchmarks.local_run import generate_stage


def test_the_generate_stage_is_read_from_its_map_state_events() -> None:
    history = [
        {"type": "TaskStateEntered", "timestamp": "2026-12-01 10:00:00+00:00",
         "stateEnteredEventDetails": {"name": "Prepare", "input": "{}"}},
        {"type": "MapStateEntered", "timestamp": "2026-12-01 10:00:01.500000+00:00",
         "stateEnteredEventDetails": {"name": "Generate",
                                      "input": json.dumps({"generation": {"problem_count": 900}})}},
        {"type": "MapStateExited", "timestamp": "2026-12-01 10:01:34+00:00",
         "stateExitedEventDetails": {"name": "Generate", "output": "{}"}},
    ]  # fmt: skip
    problems, seconds = generate_stage(history)
    assert problems == 900
    assert abs(seconds - 92.5) < 1e-6
