from hypothesis import given
from hypothesis import strategies as st

from synthtune.prompts import Solution, parse_final_answer, render_solution


def test_parse_final_answer_variants() -> None:
    assert parse_final_answer("step\nAnswer: 42") == "42"
    assert parse_final_answer("**Final answer:** a shadow") == "a shadow"
    assert parse_final_answer("Answer: first\nmore thinking\nanswer: second") == "second"
    assert parse_final_answer("no answer line here") is None
    assert parse_final_answer("Answer:   ") is None
    assert parse_final_answer(None) is None


single_line = st.text(
    alphabet=st.characters(categories=["L", "N", "Zs", "Pd"]), min_size=1, max_size=40
).filter(lambda text: text.strip())


@given(st.lists(single_line, max_size=5), single_line)
def test_render_then_parse_round_trips_the_answer(steps: list[str], answer: str) -> None:
    text = render_solution(Solution(steps=steps, final_answer=answer))
    assert parse_final_answer(text) == answer.strip()
