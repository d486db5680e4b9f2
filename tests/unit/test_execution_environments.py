"""The offline runtime's execution environments: as many as the invocations at once need, each warm after
its first, each with Powertools' per-invocation state its own."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from synthtune.engine.chat import with_requests_in_flight
from synthtune.observability import logger, metrics
from synthtune_cli.environments import Environments, powertools_per_environment
from synthtune_cli.offline import _redirect_powertools_logs, _WholeLines


def test_an_idle_environment_is_reused_warm_and_a_busy_one_is_not() -> None:
    environments = Environments()
    with environments.serving("F") as first:
        assert first.cold_start
        with environments.serving("F") as second:  # while the first is busy
            assert second is not first
            assert second.cold_start
    with environments.serving("F") as again:
        assert again in (first, second)
        assert not again.cold_start
    with environments.serving("G"):
        pass
    assert (environments.created("F"), environments.created("G")) == (2, 1)


def test_invocations_at_once_keep_their_own_log_keys_and_metrics() -> None:
    lines = io.StringIO()
    both_started = threading.Barrier(2, timeout=10)
    environments = Environments()

    def invoke(shard: int) -> None:
        with environments.serving("GenerateShardFunction"):
            logger.append_keys(shard=shard)
            metrics.add_metric(name="TeacherAnswersVerified", unit=MetricUnit.Count, value=shard)
            both_started.wait()  # both have set their state before either uses it

            # A request thread the invocation starts logs with the invocation's keys.
            def ask(item: int) -> None:
                logger.info("asked", extra={"item": item})

            with_requests_in_flight(ask, [shard], 1, f"shard-{shard}")
            both_started.wait()
            metrics.flush_metrics()

    stream = logger.registered_handler.stream  # type: ignore[attr-defined]
    with (
        powertools_per_environment(),
        contextlib.redirect_stdout(lines),
    ):
        _redirect_powertools_logs(lines)
        threads = [threading.Thread(target=invoke, args=(shard,)) for shard in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.info("outside")
    _redirect_powertools_logs(stream)

    logged: list[dict[str, Any]] = [json.loads(line) for line in lines.getvalue().splitlines()]
    asked = {line["item"]: line.get("shard") for line in logged if line.get("message") == "asked"}
    assert asked == {1: 1, 2: 2}
    published = sorted(line["TeacherAnswersVerified"] for line in logged if "TeacherAnswersVerified" in line)
    assert published == [[1.0], [2.0]]
    (outside,) = [line for line in logged if line.get("message") == "outside"]
    assert "shard" not in outside  # the process's own state is untouched


def test_the_log_keeps_each_line_whole_when_environments_print_at_once() -> None:
    written = io.StringIO()
    log = _WholeLines(written)
    between = threading.Barrier(2, timeout=10)

    def emit(who: str) -> None:
        for number in range(50):
            log.write(json.dumps({"who": who, "number": number}))
            between.wait()  # the other environment writes between this line's text and its newline
            log.write("\n")

    threads = [threading.Thread(target=emit, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    assert sorted((line["who"], line["number"]) for line in lines) == sorted(
        (who, number) for who in "ab" for number in range(50)
    )
