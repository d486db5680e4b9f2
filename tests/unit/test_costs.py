import datetime as dt

import pytest

from synthtune.contracts.errors import FineTuneUnavailable
from synthtune.contracts.usage import Usage
from synthtune.money.catalog import OPENAI_FINE_TUNING_ENDS, accepts_temperature, base_model_of, model_info
from synthtune.money.usage import inference_cost_usd, training_cost_usd
from synthtune.providers.openai.models import OpenAIModels


def no_client() -> object:
    raise AssertionError("check_usable must not call the provider")


def test_prices_per_million_tokens() -> None:
    usage = Usage(requests=1, input_tokens=1_000_000, cached_input_tokens=200_000, output_tokens=500_000)
    # gpt-4.1: $2 input, $0.50 cached input, $8 output per million
    assert inference_cost_usd("gpt-4.1-2025-04-14", usage) == pytest.approx(0.8 * 2 + 0.2 * 0.5 + 0.5 * 8)
    assert inference_cost_usd("gpt-4.1", usage) == inference_cost_usd("gpt-4.1-2025-04-14", usage)
    fine_tuned = "ft:gpt-4.1-nano-2025-04-14:org:synthtune:abc123"
    assert base_model_of(fine_tuned) == "gpt-4.1-nano-2025-04-14"
    assert inference_cost_usd(fine_tuned, Usage(input_tokens=1_000_000)) == pytest.approx(0.20)
    assert training_cost_usd("gpt-4.1-nano-2025-04-14", 2_000_000) == pytest.approx(3.0)
    assert inference_cost_usd("some-new-model", usage) is None
    gpt5 = model_info("gpt-5")
    assert gpt5 is not None and gpt5.fine_tuning is None


def test_fine_tuning_availability_follows_the_dated_table() -> None:
    official = OpenAIModels(no_client, base_url=None)  # type: ignore[arg-type]
    official.check_usable("gpt-4.1-mini-2025-04-14", "student", dt.date(2026, 11, 21))
    day_after = OPENAI_FINE_TUNING_ENDS + dt.timedelta(days=1)
    with pytest.raises(FineTuneUnavailable, match="after 2027-01-06"):
        official.check_usable("gpt-4.1-mini-2025-04-14", "student", day_after)
    with pytest.raises(FineTuneUnavailable, match="OpenAI does not fine-tune it"):
        official.check_usable("gpt-5-mini", "student", dt.date(2026, 11, 21))
    # Another OpenAI-compatible server keeps its own dates; but a model OpenAI's fine-tuning API does not
    # take is refused wherever the run would fine-tune it, before the teacher is paid.
    compatible = OpenAIModels(no_client, base_url="http://127.0.0.1:8787/v1")  # type: ignore[arg-type]
    compatible.check_usable("gpt-4.1-mini-2025-04-14", "student", dt.date(2027, 6, 1))
    compatible.check_usable("gpt-5", "teacher", dt.date(2027, 6, 1))
    with pytest.raises(FineTuneUnavailable, match=r"'gpt-3.5-turbo': OpenAI does not fine-tune it"):
        compatible.check_usable("gpt-3.5-turbo", "student", dt.date(2026, 1, 1))


def test_reasoning_models_get_no_temperature() -> None:
    assert accepts_temperature("gpt-4.1-2025-04-14")
    assert accepts_temperature("ft:gpt-4.1-nano-2025-04-14:org:s:abc")
    assert not accepts_temperature("gpt-5-mini")
    assert not accepts_temperature("o4-mini")
