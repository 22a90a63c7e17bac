"""The one number validator of the harness: flags, environment variables and chaos arguments.

A number arrives as text (a flag, a variable) or as a number (a configuration value); it is
checked by pydantic against its bounds, and a bad one gets the one message of the harness:
`NAME='x' is not a whole number from 1 to 10`, `NAME=-1 is not a number of 0 or more`.
`expected_number` says the second half for settings whose bounds pydantic checks elsewhere.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field, TypeAdapter, ValidationError

from harness.errors import ConfigError

__all__ = [
    "NumberError",
    "bounds_from_metadata",
    "expected_from_metadata",
    "expected_number",
    "number",
    "whole_number",
]


class NumberError(ConfigError):
    """A bad number; `expected` says what a good one is, for messages laid out another way
    (a file's `key 'x': expected a number above 0, got -5`)."""

    def __init__(self, message: str, expected: str) -> None:
        super().__init__(message)
        self.expected = expected


def expected_number(
    *,
    whole: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> str:
    """What a valid value is, in words: `a whole number from 1 to 10`, `a number above 0`."""
    kind = "a whole number" if whole else "a number"
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum:g} to {maximum:g}"
    low = f"of {minimum:g} or more" if minimum is not None else None
    low = f"above {above:g}" if above is not None else low
    high = f"below {below:g}" if below is not None else None
    if maximum is not None:
        high = f"up to {maximum:g}" if low else f"of {maximum:g} or less"
    return " ".join([kind, " and ".join(p for p in (low, high) if p)]).strip()


def bounds_from_metadata(metadata: list[Any]) -> dict[str, float]:
    """A pydantic field's constraints (Ge, Gt, Le, Lt) as the bounds `number` takes."""
    bounds: dict[str, float] = {}
    for item in metadata:
        for kind, key in ((Ge, "minimum"), (Gt, "above"), (Le, "maximum"), (Lt, "below")):
            if isinstance(item, kind):
                bounds[key] = float(getattr(item, kind.__name__.lower()))
    return bounds


def expected_from_metadata(whole: bool, metadata: list[Any]) -> str:
    """`expected_number` for a pydantic field's constraints."""
    return expected_number(whole=whole, **bounds_from_metadata(metadata))


@lru_cache(maxsize=64)
def _adapter(
    whole: bool,
    strict: bool,
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    below: float | None,
) -> TypeAdapter[Any]:
    kind: Any = int if whole else float
    field = Field(ge=minimum, gt=above, le=maximum, lt=below, allow_inf_nan=False, strict=strict)
    return TypeAdapter(Annotated[kind, field])


def number(
    value: Any,
    name: str | None,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    strict: bool = False,
) -> float:
    """`value` (a number or, unless `strict`, its text) as a float within the bounds; a
    NumberError naming `name` (without one, quoting just the value: argparse adds the flag)."""
    return float(_check(value, name, False, strict, minimum, above, maximum, below))


def whole_number(
    value: Any,
    name: str | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    strict: bool = False,
) -> int:
    """`value` as an int within [minimum, maximum]; the same NumberError as `number` otherwise."""
    return int(_check(value, name, True, strict, minimum, None, maximum, None))


def _check(
    value: Any,
    name: str | None,
    whole: bool,
    strict: bool,
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    below: float | None,
) -> Any:
    adapter = _adapter(whole, strict, minimum, above, maximum, below)
    try:
        if isinstance(value, bool):  # True is not 1 here
            raise ValueError(value)
        return adapter.validate_python(value.strip() if isinstance(value, str) else value)
    except (ValidationError, ValueError):
        subject = f"{name}={value!r}" if name else repr(value)
        what = expected_number(
            whole=whole, minimum=minimum, above=above, maximum=maximum, below=below
        )
        raise NumberError(f"{subject} is not {what}", what) from None
