"""Suites: which load profile, which experiments when, how long to drain, and the thresholds.

A suite is data (`scenarios/suites/*.yaml`), checked completely before anything starts: every
error names the file, the key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.durations import parse_duration
from harness.errors import ConfigError
from harness.numbers import NumberError, whole_number
from harness.numbers import number as real_number
from harness.run.gate import Threshold, parse_threshold

__all__ = ["SCENARIOS", "ScheduledExperiment", "Suite", "load_suite"]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
_KEYS = {
    "name", "description", "profile", "compress", "duration", "warmup", "start_hour", "seed",
    "processes", "experiments", "drain", "thresholds", "platform",
}  # fmt: skip
_EXPERIMENT_KEYS = {"experiment", "at", "configuration"}


@dataclass(frozen=True)
class ScheduledExperiment:
    path: Path
    at_s: float  # seconds after the warm-up
    configuration: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Suite:
    source: Path
    name: str
    description: str
    profile: str
    compress: float | None
    duration_s: float
    warmup_s: float
    start_hour: str | float | None
    seed: int
    processes: int
    experiments: list[ScheduledExperiment]
    drain_deadline_s: float
    thresholds: list[Threshold]
    platform: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source), "name": self.name, "profile": self.profile,
            "compress": self.compress, "duration_s": self.duration_s, "warmup_s": self.warmup_s,
            "start_hour": self.start_hour, "seed": self.seed, "processes": self.processes,
            "experiments": [{"experiment": str(e.path), "at_s": e.at_s, "configuration": e.configuration}
                            for e in self.experiments],
            "drain_deadline_s": self.drain_deadline_s,
            "thresholds": [t.spec for t in self.thresholds],
        }  # fmt: skip


def _find_suite(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    candidate = SCENARIOS / "suites" / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in (SCENARIOS / "suites").glob("*.yaml")))
    raise ConfigError(f"no suite {str(name_or_path)!r}: give a file or one of: {known}")


def _find_experiment(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected an experiment name or file, got {value!r}")
    for candidate in (
        base / value,
        Path(value),
        SCENARIOS / "chaos" / value,
        SCENARIOS / "chaos" / f"{value}.yaml",
    ):
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(f"{where}: no experiment {value!r} (looked in {base} and scenarios/chaos/)")


def load_suite(name_or_path: str | Path) -> Suite:
    """Read and check a suite; the experiments' own files are checked by the chaos runner."""
    path = _find_suite(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it as text: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of suite keys, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; expected some of: {', '.join(sorted(_KEYS))}"
        )
    for required in ("profile", "duration"):
        if required not in data:
            raise ConfigError(f"{path}: key {required!r} is missing")

    def number(key: str, default: Any, kind: type, low: float) -> Any:
        value = data.get(key, default)
        if value is None:
            return None
        try:
            if kind is int:
                return whole_number(value, key, minimum=int(low), strict=True)
            return real_number(value, key, minimum=low, strict=True)
        except NumberError as exc:
            raise ConfigError(
                f"{path}: key {key!r}: expected {exc.expected}, got {value!r}"
            ) from None

    experiments = []
    for i, entry in enumerate(data.get("experiments") or []):
        where = f"{path}: experiments[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: expected a mapping with 'experiment' and 'at', got {entry!r}"
            )
        extra = sorted(set(entry) - _EXPERIMENT_KEYS)
        if extra:
            raise ConfigError(
                f"{where}: unknown key {extra[0]!r}; expected experiment, at, configuration"
            )
        config = entry.get("configuration") or {}
        if not isinstance(config, dict):
            raise ConfigError(f"{where}.configuration: expected a mapping, got {config!r}")
        experiments.append(
            ScheduledExperiment(
                _find_experiment(entry.get("experiment"), f"{where}.experiment", path.parent),
                parse_duration(entry.get("at", 0), f"{where}.at"),
                dict(config),
            )
        )
    duration = parse_duration(data["duration"], f"{path}: key 'duration'")
    late = [e for e in experiments if e.at_s >= duration]
    if late:
        raise ConfigError(
            f"{path}: experiment {late[0].name!r} starts at {late[0].at_s:g} s, after the load ends ({duration:g} s)"
        )
    drain = data.get("drain") or {}
    if not isinstance(drain, dict) or set(drain) - {"deadline"}:
        raise ConfigError(f"{path}: key 'drain': expected a mapping with 'deadline', got {drain!r}")
    raw_thresholds = data.get("thresholds") or {}
    if not isinstance(raw_thresholds, dict):
        raise ConfigError(
            f"{path}: key 'thresholds': expected a mapping of metric to condition, got {raw_thresholds!r}"
        )
    thresholds = [
        parse_threshold(k, v, f"{path}: thresholds.{k}") for k, v in raw_thresholds.items()
    ]
    profile = data["profile"]
    if not isinstance(profile, str):
        raise ConfigError(
            f"{path}: key 'profile': expected a profile name or file, got {profile!r}"
        )
    platform = data.get("platform")
    if platform not in (None, "local", "k8s"):
        raise ConfigError(f"{path}: key 'platform': expected local or k8s, got {platform!r}")
    return Suite(
        source=path.resolve(),
        name=str(data.get("name") or path.stem),
        description=str(data.get("description") or ""),
        profile=profile,
        compress=number("compress", None, float, 1),
        duration_s=duration,
        warmup_s=parse_duration(data.get("warmup", 0), f"{path}: key 'warmup'"),
        start_hour=data.get("start_hour"),
        seed=number("seed", 7, int, 0),
        processes=number("processes", 1, int, 1),
        experiments=sorted(experiments, key=lambda e: e.at_s),
        drain_deadline_s=parse_duration(drain.get("deadline", "120s"), f"{path}: drain.deadline"),
        thresholds=thresholds,
        platform=platform,
    )
