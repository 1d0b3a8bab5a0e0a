"""The fast indented encoder writes exactly what ``json.dumps(indent=2)`` writes, or declines."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ih5.fs._indented import indented_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
PLAIN = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=40,
)


def stdlib(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


@given(PLAIN)
@settings(max_examples=300)
def test_indented_json_matches_the_standard_library_byte_for_byte(data: Any) -> None:
    assert indented_json(data) == stdlib(data)


class Text(str):
    pass


class Number(float):
    pass


def test_indented_json_leaves_anything_not_plain_to_the_standard_library() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for data in (
        {"a": (1, 2)},
        {1: "int key"},
        [Text("a str subclass")],
        [Number(1.5)],
        {"x": math.nan},
        [math.inf],
        {"set": {1}},
        loop,
    ):
        assert indented_json(data) is None


def test_indented_json_of_empty_containers_and_nesting() -> None:
    data = {"a": {}, "b": [], "c": [{"d": [1, 2.5, None, True, False, "é\n\u2028"]}]}
    assert indented_json(data) == stdlib(data)
