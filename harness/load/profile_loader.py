"""Finding, reading and checking load profile files: the validation of the model in profiles.py.

A profile is data (`scenarios/load/profiles/<name>.yaml`, or any `.yaml` path), checked before
anything starts: every error is a ConfigError naming the file, the key and what was expected
(`flat.yaml: key 'order_mix.skus.count': expected a whole number from 1 to 9999, got 0`). The
model itself (profiles.py) knows nothing of files or YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.load.curve import DAY_S
from harness.load.profiles import OrderMix, Patience, Profile, RetryPolicy, Spike
from harness.numbers import NumberError, expected_number, number, whole_number

__all__ = [
    "PROFILES_DIR",
    "available_profiles",
    "load_profile",
    "parse_hour",
    "parse_profile",
    "resolve_profile_path",
]

PROFILES_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "load" / "profiles"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_CURRENCIES = ("EUR", "USD", "GBP")
_MAX_AMOUNT_CENTS = 100_000_000  # docs/api.md


def available_profiles(directory: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def resolve_profile_path(name_or_path: str | Path, directory: Path = PROFILES_DIR) -> Path:
    """A profile file from a name (`daily-50k`) or a path; ConfigError when there is none."""
    text = str(name_or_path).strip()
    candidate = Path(text)
    if candidate.suffix in (".yaml", ".yml") or "/" in text:
        if candidate.is_file():
            return candidate
        raise ConfigError(
            f"profile file '{text}' does not exist; give a name or an existing .yaml file"
        )
    named = directory / f"{text}.yaml"
    if text and named.is_file():
        return named
    known = ", ".join(available_profiles(directory)) or "none"
    raise ConfigError(
        f"unknown profile '{text}': expected one of {known} (in {_display(directory)}) "
        "or a path to a .yaml file"
    )


def load_profile(name_or_path: str | Path, directory: Path = PROFILES_DIR) -> Profile:
    """Read and validate a profile by name or path; ConfigError names the file and the key."""
    path = resolve_profile_path(name_or_path, directory)
    source = _display(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid yaml: {_one_line(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: cannot be read: not UTF-8 text") from None
    return parse_profile(data, source=source, name=path.stem)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


_TOP_KEYS = {
    "description",
    "orders_per_day",
    "hourly_weights",
    "spikes",
    "compress",
    "start_hour",
    "arrivals",
    "order_mix",
    "retry",
    "patience",
}
_MIX_KEYS = {
    "items_per_order",
    "qty_per_item",
    "skus",
    "customers",
    "unit_price_cents",
    "currencies",
}
_SKU_KEYS = {"count", "zipf_s", "rank_seed"}
_PRICE_KEYS = {"min", "max"}
_SPIKE_KEYS = {"at", "duration_min", "multiplier"}
_PATIENCE_KEYS = {"after_s", "cancel_share"}
_RETRY_KEYS = {
    "timeout_s",
    "max_attempts",
    "backoff_s",
    "backoff_multiplier",
    "max_backoff_s",
    "jitter",
    "retry_on_status",
}


class _Reader:
    """Checks one profile document, raising ConfigError('<file>: key '<a.b>': ...')."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: key '{key}': {message}")

    def mapping(
        self, value: Any, key: str, allowed: set[str], required: tuple[str, ...] = ()
    ) -> dict:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a mapping, got {_show(value)}")
        for k in value:
            if k not in allowed:
                where = f"{key}.{k}" if key else str(k)
                raise self.fail(where, f"unknown key; expected one of {', '.join(sorted(allowed))}")
        for k in required:
            if k not in value:
                raise self.fail(f"{key}.{k}" if key else k, "missing; this key is required")
        return dict(value)

    def number(
        self,
        value: Any,
        key: str,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
    ) -> float:
        low = {"above": lo} if lo_open else {"minimum": lo}
        try:
            return number(value, key, maximum=hi, strict=True, **low)
        except NumberError as exc:
            raise self.fail(key, f"expected {exc.expected}, got {_show(value)}") from None

    def integer(self, value: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
        try:
            return whole_number(value, key, minimum=lo, maximum=hi, strict=True)
        except NumberError as exc:
            raise self.fail(key, f"expected {exc.expected}, got {_show(value)}") from None

    def distribution(self, value: Any, key: str, lo: int, hi: int) -> dict[int, float]:
        """{integer: weight}, e.g. items per order; weights >= 0, at least one > 0."""
        if not isinstance(value, Mapping) or not value:
            raise self.fail(key, f"expected a mapping of integer to weight, got {_show(value)}")
        out: dict[int, float] = {}
        for k, w in value.items():
            n = self.integer(k, f"{key}.{k}", lo, hi) if not isinstance(k, str) else None
            if n is None:
                expected = expected_number(whole=True, minimum=lo, maximum=hi)
                raise self.fail(f"{key}.{k}", f"expected {expected}, got {_show(k)}")
            out[n] = self.number(w, f"{key}.{k}", 0)
        if sum(out.values()) <= 0:
            raise self.fail(key, "expected at least one weight > 0, got all 0")
        return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return repr(value)


def parse_hour(value: Any) -> float:
    """An hour of the day from a number (8, 7.5) or "HH:MM"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        if 0 <= value < 24:
            return float(value)
        raise ValueError(value)
    if isinstance(value, str):
        text = value.strip()
        m = _HHMM.match(text)
        if m:
            return int(m.group(1)) + int(m.group(2)) / 60.0
        return parse_hour(float(text))
    raise ValueError(value)


def parse_profile(data: Any, source: str = "<profile>", name: str = "profile") -> Profile:
    """Validate a profile document (already parsed YAML) into a Profile."""
    r = _Reader(source)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of keys at the top level, got {_show(data)}"
        )
    top = r.mapping(data, "", _TOP_KEYS, required=("orders_per_day", "hourly_weights"))

    orders_per_day = r.number(top["orders_per_day"], "orders_per_day", 0, 1e9, lo_open=True)
    weights_raw = top["hourly_weights"]
    if not isinstance(weights_raw, list | tuple):
        raise r.fail("hourly_weights", f"expected 24 numbers, got {_show(weights_raw)}")
    if len(weights_raw) != 24:
        raise r.fail("hourly_weights", f"expected 24 numbers, got {len(weights_raw)}")
    weights = tuple(r.number(w, f"hourly_weights[{i}]", 0) for i, w in enumerate(weights_raw))
    if sum(weights) <= 0:
        raise r.fail("hourly_weights", "expected at least one weight > 0, got all 0")

    spikes_raw = top.get("spikes") or []
    if not isinstance(spikes_raw, list):
        raise r.fail(
            "spikes",
            f"expected a list of {{at, duration_min, multiplier}}, got {_show(spikes_raw)}",
        )
    spikes = []
    for i, item in enumerate(spikes_raw):
        key = f"spikes[{i}]"
        s = r.mapping(item, key, _SPIKE_KEYS, required=tuple(sorted(_SPIKE_KEYS)))
        at = s["at"]
        m = _HHMM.match(at.strip()) if isinstance(at, str) else None
        if not m:
            raise r.fail(f"{key}.at", f'expected a time of day "HH:MM", got {_show(at)}')
        at_s = int(m.group(1)) * 3600.0 + int(m.group(2)) * 60.0
        duration_min = r.number(s["duration_min"], f"{key}.duration_min", 0, 1440, lo_open=True)
        multiplier = r.number(s["multiplier"], f"{key}.multiplier", 0, 1000)
        spikes.append(Spike(at_s, duration_min * 60.0, multiplier))

    compress = r.number(top.get("compress", 24), "compress", 0, DAY_S, lo_open=True)
    try:
        start_hour = parse_hour(top.get("start_hour", 0))
    except (ValueError, TypeError):
        raise r.fail(
            "start_hour", f'expected an hour in [0, 24) or "HH:MM", got {_show(top["start_hour"])}'
        ) from None
    arrivals = top.get("arrivals", "poisson")
    if arrivals not in ("poisson", "uniform"):
        raise r.fail("arrivals", f"expected 'poisson' or 'uniform', got {_show(arrivals)}")
    description = top.get("description", "")
    if not isinstance(description, str):
        raise r.fail("description", f"expected text, got {_show(description)}")

    mix = _parse_mix(r, top.get("order_mix", {}))
    retry = _parse_retry(r, top.get("retry", {}))
    patience = _parse_patience(r, top.get("patience", {}))
    profile = Profile(
        name=name,
        source=source,
        orders_per_day=orders_per_day,
        hourly_weights=weights,
        spikes=tuple(spikes),
        compress=compress,
        start_hour=start_hour,
        arrivals=arrivals,
        description=description.strip(),
        order_mix=mix,
        retry=retry,
        patience=patience,
    )
    profile.curve()  # every multiplier 0 is only visible once the day's curve is built
    return profile


def _parse_mix(r: _Reader, raw: Any) -> OrderMix:
    mix = r.mapping(raw if raw is not None else {}, "order_mix", _MIX_KEYS)
    d = OrderMix()
    items = (
        r.distribution(mix["items_per_order"], "order_mix.items_per_order", 1, 20)
        if "items_per_order" in mix
        else d.items_per_order
    )
    qty = (
        r.distribution(mix["qty_per_item"], "order_mix.qty_per_item", 1, 100)
        if "qty_per_item" in mix
        else d.qty_per_item
    )
    skus = r.mapping(mix.get("skus", {}), "order_mix.skus", _SKU_KEYS)
    sku_count = r.integer(skus.get("count", d.sku_count), "order_mix.skus.count", 1, 9999)
    if max(items) > sku_count:
        raise r.fail(
            "order_mix.items_per_order",
            f"an order of {max(items)} distinct items needs at least {max(items)} skus, got skus.count {sku_count}",
        )
    zipf_s = r.number(skus.get("zipf_s", d.zipf_s), "order_mix.skus.zipf_s", 0, 10)
    rank_seed = skus.get("rank_seed", d.rank_seed)
    if rank_seed is not None:
        rank_seed = r.integer(rank_seed, "order_mix.skus.rank_seed")
    customers = r.integer(mix.get("customers", d.customers), "order_mix.customers", 1, 99_999_999)
    price = r.mapping(mix.get("unit_price_cents", {}), "order_mix.unit_price_cents", _PRICE_KEYS)
    pmin = r.integer(price.get("min", d.unit_price_min_cents), "order_mix.unit_price_cents.min", 1)
    pmax = r.integer(
        price.get("max", d.unit_price_max_cents), "order_mix.unit_price_cents.max", pmin
    )
    largest = pmax * max(qty) * max(items)
    if largest > _MAX_AMOUNT_CENTS:
        raise r.fail(
            "order_mix.unit_price_cents.max",
            f"the largest order would cost {largest} cents, above the api's {_MAX_AMOUNT_CENTS}; lower it",
        )
    currencies_raw = mix.get("currencies", d.currencies)
    if not isinstance(currencies_raw, Mapping) or not currencies_raw:
        raise r.fail(
            "order_mix.currencies",
            f"expected a mapping of currency to weight, got {_show(currencies_raw)}",
        )
    currencies = {}
    for code, w in currencies_raw.items():
        if code not in _CURRENCIES:
            raise r.fail(
                f"order_mix.currencies.{code}",
                f"expected one of {', '.join(_CURRENCIES)}, got {_show(code)}",
            )
        currencies[code] = r.number(w, f"order_mix.currencies.{code}", 0)
    if sum(currencies.values()) <= 0:
        raise r.fail("order_mix.currencies", "expected at least one weight > 0, got all 0")
    return OrderMix(
        items_per_order=items,
        qty_per_item=qty,
        sku_count=sku_count,
        zipf_s=zipf_s,
        rank_seed=rank_seed,
        customers=customers,
        unit_price_min_cents=pmin,
        unit_price_max_cents=pmax,
        currencies=currencies,
    )


def _parse_retry(r: _Reader, raw: Any) -> RetryPolicy:
    p = r.mapping(raw if raw is not None else {}, "retry", _RETRY_KEYS)
    d = RetryPolicy()
    statuses = p.get("retry_on_status", list(d.retry_on_status))
    if not isinstance(statuses, list):
        raise r.fail(
            "retry.retry_on_status", f"expected a list of http statuses, got {_show(statuses)}"
        )
    codes = tuple(
        r.integer(s, f"retry.retry_on_status[{i}]", 400, 599) for i, s in enumerate(statuses)
    )
    return RetryPolicy(
        timeout_s=r.number(
            p.get("timeout_s", d.timeout_s), "retry.timeout_s", 0, 600, lo_open=True
        ),
        max_attempts=r.integer(p.get("max_attempts", d.max_attempts), "retry.max_attempts", 1, 20),
        backoff_s=r.number(p.get("backoff_s", d.backoff_s), "retry.backoff_s", 0, 600),
        backoff_multiplier=r.number(
            p.get("backoff_multiplier", d.backoff_multiplier), "retry.backoff_multiplier", 1, 10
        ),
        max_backoff_s=r.number(
            p.get("max_backoff_s", d.max_backoff_s), "retry.max_backoff_s", 0, 3600
        ),
        jitter=r.number(p.get("jitter", d.jitter), "retry.jitter", 0, 1),
        retry_on_status=codes,
    )


def _parse_patience(r: _Reader, raw: Any) -> Patience:
    p = r.mapping(raw if raw is not None else {}, "patience", _PATIENCE_KEYS)
    d = Patience()
    return Patience(
        after_s=r.number(p.get("after_s", d.after_s), "patience.after_s", 0, 86400, lo_open=True),
        cancel_share=r.number(p.get("cancel_share", d.cancel_share), "patience.cancel_share", 0, 1),
    )
