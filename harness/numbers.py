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

__all__ = ["expected_number", "number", "whole_number"]


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
    low = (f"{minimum:g}", "") if minimum is not None else None
    if above is not None:
        low = (f"{above:g}", "above")
    high = (f"{maximum:g}", "") if maximum is not None else None
    if below is not None:
        high = (f"{below:g}", "below")
    if low and high and not low[1] and not high[1]:
        return f"{kind} from {low[0]} to {high[0]}"
    parts = []
    if low:
        parts.append(f"above {low[0]}" if low[1] else f"of {low[0]} or more")
    if high:
        parts.append(f"below {high[0]}" if high[1] else f"of {high[0]} or less")
    return " ".join([kind, " and ".join(parts)]).strip()


def expected_from_metadata(whole: bool, metadata: list[Any]) -> str:
    """`expected_number` for a pydantic field's constraints (Ge, Gt, Le, Lt)."""
    bounds: dict[str, float] = {}
    for item in metadata:
        for kind, key in ((Ge, "minimum"), (Gt, "above"), (Le, "maximum"), (Lt, "below")):
            if isinstance(item, kind):
                bounds[key] = float(getattr(item, kind.__name__.lower()))
    return expected_number(whole=whole, **bounds)


@lru_cache(maxsize=64)
def _adapter(
    whole: bool,
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    below: float | None,
) -> TypeAdapter[Any]:
    kind: Any = int if whole else float
    field = Field(ge=minimum, gt=above, le=maximum, lt=below, allow_inf_nan=False)
    return TypeAdapter(Annotated[kind, field])


def number(
    value: Any,
    name: str | None,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> float:
    """`value` (a number or its text) as a float within the bounds; a ConfigError naming `name`
    (or, without a name, quoting just the value: argparse adds the flag) otherwise."""
    return float(_check(value, name, False, minimum, above, maximum, below))


def whole_number(
    value: Any, name: str | None, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """`value` as an int within [minimum, maximum]; the same ConfigError as `number` otherwise."""
    return int(_check(value, name, True, minimum, None, maximum, None))


def _check(
    value: Any,
    name: str | None,
    whole: bool,
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    below: float | None,
) -> Any:
    adapter = _adapter(whole, minimum, above, maximum, below)
    try:
        if isinstance(value, bool):  # True is not 1 here
            raise ValueError(value)
        return adapter.validate_python(value.strip() if isinstance(value, str) else value)
    except (ValidationError, ValueError):
        subject = f"{name}={value!r}" if name else repr(value)
        what = expected_number(
            whole=whole, minimum=minimum, above=above, maximum=maximum, below=below
        )
        raise ConfigError(f"{subject} is not {what}") from None
