"""A column of texts held as bytes gives back the same texts, and codes equal texts alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.verify import texts
from harness.verify.texts import Texts

pytestmark = pytest.mark.unit


def _objects(values: list) -> np.ndarray:
    return np.array([*values, 0], dtype=object)[:-1]  # an object array even of equal-length texts


def test_texts_come_back_as_they_were() -> None:
    values = _objects(["1-0", None, "", "ord-1:OrderPlaced", "1-0"])
    held = Texts.of(values)
    assert held is not None
    assert held.at().tolist() == values.tolist()
    assert [type(v) for v in held.at()] == [str, type(None), str, str, str]
    assert held.at([3, 1]).tolist() == ["ord-1:OrderPlaced", None]
    both = Texts.joined([held, Texts.of(_objects(["a-much-longer-text"]))])
    assert both.at().tolist() == [*values.tolist(), "a-much-longer-text"]


@pytest.mark.parametrize("odd", ["ünï", "ends with NUL\x00", 5, b"bytes", {"a": 1}])
def test_values_that_would_not_come_back_stay_objects(odd: object) -> None:
    assert Texts.of(_objects(["1-0", odd])) is None


@pytest.mark.parametrize("collide", [False, True])
def test_codes_group_equal_texts_as_factorize_does(
    monkeypatch: pytest.MonkeyPatch, collide: bool
) -> None:
    if collide:  # every hash equal: the byte check finds the collision and sorts instead
        monkeypatch.setattr(texts, "_hashes", lambda data: np.zeros(len(data), dtype=np.uint64))
    values = _objects(["b", "a", None, "b", "", "a", "c", ""])
    codes = Texts.of(values).codes()
    expected = pd.factorize(values)[0]
    assert (codes < 0).tolist() == (expected < 0).tolist()
    pairs = set(zip(codes.tolist(), expected.tolist(), strict=True))
    assert len(pairs) == len(set(codes.tolist())) == len(set(expected.tolist()))
