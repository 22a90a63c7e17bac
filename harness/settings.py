"""Every setting of the harness, its environment variable, default, type and meaning: the one place.

Each group is a pydantic-settings model (prefix `SAGAQUAKE_`): pydantic checks the types and
bounds, `from_env()` reads the environment (an empty variable counts as unset) and turns a bad
value into one ConfigError line that names the variable. Building a group in code
(`LocalOptions(reclaim_idle_s=10)`) never reads the environment. `harness.settings_table`
renders every group into docs/settings.md, so the documentation cannot drift from this file.
pydantic-settings rather than more hand-written parsing: typed, bounded fields that the table
reads back, and one error structure to translate instead of a message per variable.
"""

from __future__ import annotations

import functools
import os
import random
import re
import socket
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from harness.durations import parse_duration
from harness.errors import ConfigError
from harness.numbers import expected_from_metadata

__all__ = [
    "DEPRECATED",
    "GROUPS",
    "CommandSettings",
    "KubernetesSettings",
    "LoadSettings",
    "LocalOptions",
    "LocalPorts",
    "PathSettings",
    "RunSettings",
    "SettingsGroup",
    "VerifySettings",
    "declared",
    "duration_setting",
    "env_text",
    "env_value",
    "field_type",
    "free_port",
    "isolated_env",
    "port_is_free",
    "reports_root",
    "state_dir",
]

GROUPS: list[type[SettingsGroup]] = []  # in the order of the table


class SettingsGroup(BaseSettings):
    """A group of settings. `from_env()` reads them; the constructor takes only what it is given."""

    model_config = SettingsConfigDict(
        env_prefix="SAGAQUAKE_", env_ignore_empty=True, frozen=True, populate_by_name=True
    )
    heading: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        GROUPS.append(cls)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the environment is read by from_env(), and only there

    @classmethod
    def from_env(cls) -> Self:
        try:
            return cls(**EnvSettingsSource(cls)())
        except ValidationError as exc:
            raise _config_error(cls, exc) from None

    @classmethod
    def field_from_env(cls, field: str) -> Any:
        """One setting from the environment (its default when unset), checked on its own."""
        keys = {field, cls.env_name(field)}
        values = {k: v for k, v in EnvSettingsSource(cls)().items() if k in keys}
        try:
            return getattr(cls(**values), field)
        except ValidationError as exc:
            raise _config_error(cls, exc) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of a field."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else f"SAGAQUAKE_{field.upper()}"


def _config_error(group: type[SettingsGroup], exc: ValidationError) -> ConfigError:
    """The first error of a group read from the environment, as one line naming the variable,
    quoting its value and saying what is expected (the one translator of pydantic errors)."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    names = {group.env_name(n): n for n in group.model_fields}
    name = names.get(key, key)
    var = group.env_name(name) if name in group.model_fields else key
    subject = f"environment variable {var}={error.get('input')!r}"
    kind, metadata = (
        field_type(group.model_fields[name]) if name in group.model_fields else (None, [])
    )
    if error["type"] == "value_error":
        return ConfigError(f"environment variable {var}: {error['ctx']['error']}")
    if error["type"] == "literal_error":
        return ConfigError(f"{subject} is not one of {', '.join(map(str, typing.get_args(kind)))}")
    if kind is bool:
        return ConfigError(f"{subject} is not a yes or no: use 1 or 0")
    if kind in (int, float):
        return ConfigError(f"{subject} is not {expected_from_metadata(kind is int, metadata)}")
    return ConfigError(f"{subject}: {error['msg'].lower()}")


def field_type(field: FieldInfo) -> tuple[Any, list[Any]]:
    """The type of a field without `| None` and `Annotated`, and its constraints (Ge, Le...)."""
    kind, metadata = field.annotation, list(field.metadata)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        kind = args[0] if len(args) == 1 else kind
    if typing.get_origin(kind) is Annotated:
        kind, *extra = typing.get_args(kind)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return kind, metadata


def duration_setting(value: Any) -> float:
    """A duration longer than 0 in the one grammar (harness.durations), for pydantic."""
    try:
        return parse_duration(value, "d", positive=True)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("d: ")) from None


def memory_size(value: Any) -> str:
    """A size redis-server's maxmemory takes (bytes, or with k/kb/m/mb/g/gb), checked before a
    stack starts: redis-server itself would refuse it only after `up` had waited for it."""
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(k|kb|m|mb|g|gb)?", text):
        return text
    raise ValueError(f"{value!r} is not a memory size: give bytes or e.g. 512mb, 1gb")


PositiveDuration = Annotated[float, BeforeValidator(duration_setting)]
MemorySize = Annotated[str, BeforeValidator(memory_size)]
Port = Annotated[int, Field(ge=1, le=65535)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Whole = Annotated[int, Field(ge=1)]


def _port(default: int, field: str, description: str) -> Any:
    return Field(
        default, validation_alias=f"SAGAQUAKE_{field.upper()}_PORT", description=description
    )


class PathSettings(SettingsGroup):
    heading: ClassVar[str] = "Folders"

    reports_dir: Path = Field(Path("reports"), description="where run folders go")
    state_dir: Path = Field(
        Path(".sagaquake"), description="where the pointer to the running stack lives"
    )


def reports_root() -> Path:
    """Where run folders go (`reports/` of the working directory unless SAGAQUAKE_REPORTS_DIR)."""
    return PathSettings.from_env().reports_dir.resolve()


def state_dir() -> Path:
    """Where the pointer to the running stack lives (`.sagaquake/` unless SAGAQUAKE_STATE_DIR)."""
    return PathSettings.from_env().state_dir.resolve()


class RunSettings(SettingsGroup):
    heading: ClassVar[str] = "Where a command acts"

    platform: Literal["local", "k8s", "kubernetes"] = Field(
        "local", description="where the stack runs (`--platform`); `kubernetes` means k8s"
    )
    run_dir: Path | None = Field(
        None,
        description="the run folder (`--run-dir`); default the stack's own, `reports/latest` "
        "for `report`, `reports/load-manual` for a Locust started by hand",
    )
    compress: Positive | None = Field(
        None,
        description="production seconds per wall second (`--compress`) of the load and of fault "
        "durations; default the profile's (load), run.json's, else 1 (chaos)",
    )


class LocalPorts(SettingsGroup):
    """Ports of the local stack, all on 127.0.0.1."""

    heading: ClassVar[str] = "Ports of the local stack (127.0.0.1)"

    redis: Port = _port(16379, "redis", "redis-server")
    temporal: Port = _port(17233, "temporal", "Temporal's frontend (gRPC)")
    temporal_ui: Port = _port(18233, "temporal_ui", "Temporal's Web UI")
    temporal_http: Port = _port(17243, "temporal_http", "Temporal's HTTP API")
    temporal_metrics: Port = _port(17253, "temporal_metrics", "Temporal's metrics")
    order: Port = _port(18080, "order", "order-service (the API of the shop)")
    payment: Port = _port(18081, "payment", "payment-service")
    inventory: Port = _port(18082, "inventory", "inventory-service")
    notification: Port = _port(18083, "notification", "notification-service")
    health_base: Port = _port(
        18100, "health_base", "each replica answers /readyz on this port + its slot (60 ports)"
    )

    @classmethod
    def free(cls) -> LocalPorts:
        """Ports free now (tests, parallel stacks), taken below the ephemeral range (32768+) that
        outgoing connections use, so a busy machine does not take them back before we bind."""
        names = [name for name in cls.model_fields if name != "health_base"]
        start = _free_block(len(names) + _HEALTH_BLOCK)
        values = {name: start + i for i, name in enumerate(names)}
        return cls.model_validate({**values, "health_base": start + len(names)})

    def as_env(self) -> dict[str, str]:
        """The SAGAQUAKE_<FIELD>_PORT variables under which `from_env()` returns these ports."""
        return {self.env_name(name): str(value) for name, value in self}

    def named(self) -> dict[str, int]:
        """Every fixed port by what uses it (the health block is checked per replica)."""
        return {name: value for name, value in self if name != "health_base"}


def isolated_env(folder: Path) -> dict[str, str]:
    """Environment for a `sagaquake` subprocess with free ports and its own state and reports
    folders under `folder`, so that it never meets a user's stack or another test's."""
    return {
        **os.environ,
        PathSettings.env_name("state_dir"): str(folder / "state"),
        PathSettings.env_name("reports_dir"): str(folder / "reports"),
        **LocalPorts.free().as_env(),
    }


_HEALTH_BLOCK = 60  # six Python services, ten replicas each
_LOW, _HIGH = 20000, 32000


def _free_block(size: int) -> int:
    """The start of `size` consecutive free ports in [20000, 32000)."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(_LOW, _HIGH - size)
        if all(port_is_free(p) for p in range(start, start + size)):
            return start
    raise ConfigError(f"could not find {size} free consecutive ports between {_LOW} and {_HIGH}")


def free_port() -> int:
    """One port free now, in the same range as `LocalPorts.free()` (below the ephemeral range)."""
    return _free_block(1)


def port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalOptions(SettingsGroup):
    """How the local stack runs."""

    heading: ClassVar[str] = "The local stack"

    order_replicas: Whole = Field(
        2, description="order-service replicas: a kill is not downtime (`up --order-replicas`)"
    )
    payment_replicas: Whole = Field(2, description="payment-service replicas")
    worker_replicas: Whole = Field(2, description="saga-worker replicas")
    redis_maxmemory: MemorySize = Field("1gb", description="redis-server's maxmemory")
    redis_appendfsync: Literal["always", "everysec", "no"] = Field(
        "always", description="redis-server's AOF fsync policy"
    )
    decline_rate: float = Field(
        0.03, ge=0, le=1, description="share of cards payment-service declines"
    )
    reclaim_idle_s: PositiveDuration = Field(
        60.0, description="the projection reclaims entries pending this long (`90s`, `1m`)"
    )
    catalogue: str = Field(
        "skus=200,stock=100000,scarce=4,scarce_stock=25", description="the inventory's seed"
    )
    ready_timeout_s: PositiveDuration = Field(
        120.0, description="how long `up` waits for readiness (`up --timeout`)"
    )


_PORTS = LocalPorts()


class LoadSettings(SettingsGroup):
    """A load run: the CLI flags' defaults, what the runner hands the Locust processes and what
    the locustfile reads, so `locust -f scenarios/load/locustfile.py` works by hand too."""

    heading: ClassVar[str] = "Load (`sagaquake load`, the locustfile)"

    profile: str = Field("daily-50k", description="profile name or .yaml path (`--profile`)")
    duration: PositiveDuration | None = Field(
        None, description="how long to load (`--duration`); default a whole day at the compression"
    )
    duration_s: PositiveDuration | None = Field(
        None, description="the same in seconds, as the runner hands it to Locust (beats DURATION)"
    )
    start_hour: str | None = Field(
        None,
        description='where in the day the run starts: 8, 7.5 or "15:00"; default the profile\'s',
    )
    processes: Whole = Field(
        1, description="Locust processes (`--processes` of `load` and `run`; master + N workers)"
    )
    seed: int = Field(1, description="seed of the arrivals and the order mix")
    arrivals: Literal["poisson", "uniform"] | None = Field(
        None, description="poisson (real customers) or uniform; default the profile's"
    )
    order_api: str = Field(
        f"http://127.0.0.1:{_PORTS.order}", description="the API the load drives (the stack's)"
    )
    redis_url: str = Field(
        f"redis://127.0.0.1:{_PORTS.redis}/0", description="the stack's Redis (the web UI tab)"
    )
    max_users: Whole = Field(5000, description="cap of the user pool per Locust process")
    ledger_fsync_every: int = Field(
        0, ge=0, description="fsync the ledger every N lines; 0: only at close"
    )
    web: bool = Field(False, description="Locust's web UI instead of headless (`--web`)")
    web_host: str = Field("127.0.0.1", description="web UI address")
    web_port: Port = Field(8089, description="web UI port")
    autostart: bool = Field(False, description="with --web: start at once")
    overdue_s: PositiveDuration = Field(
        10.0,
        validation_alias="SAGAQUAKE_UI_OVERDUE_S",
        description="the web UI flags accepted orders without OrderPlaced after this long",
    )
    # the run folder and the compression are RunSettings' variables, read here too
    run_dir: Path = Field(Path("reports/load-manual"), description="see SAGAQUAKE_RUN_DIR")
    compress: Positive | None = Field(None, description="see SAGAQUAKE_COMPRESS")

    @model_validator(mode="after")
    def _seconds(self) -> Self:
        if self.duration_s is None and self.duration is not None:
            object.__setattr__(self, "duration_s", self.duration)
        return self


class VerifySettings(SettingsGroup):
    heading: ClassVar[str] = "Verify"

    verify_workers: Whole | None = Field(
        None, description="processes that read a snapshot and replay histories; default 2 on "
        "two cores or more, else 1",
    )  # fmt: skip
    replay_against: str | None = Field(
        None, description="replay the histories on this git ref or folder (`--replay-against`)"
    )


class KubernetesSettings(SettingsGroup):
    heading: ClassVar[str] = "Kubernetes (`--platform k8s`)"

    k8s_context: str | None = Field(
        None, description="the kubeconfig context to act on (`--context`); default the current one"
    )
    k8s_overlay: str | None = Field(
        None,
        description="the k8s/overlays/ folder to apply (`--overlay`); default `kind` for a "
        "`kind-*` context, `minikube` for `minikube`",
    )
    k8s_image: str | None = Field(
        None, description="the image of every container (`--image`); default `sagaquake:dev`"
    )
    k8s_node_host: str | None = Field(
        None, description="where the NodePorts answer from here; default the API server's host"
    )
    k8s_dir: Path | None = Field(
        None, description="where base/ and overlays/ are; default the repository's `k8s/`"
    )
    k8s_impersonate: str | None = Field(
        None,
        description="who faults act as; `none` to act as yourself; default "
        "`system:serviceaccount:sagaquake:sagaquake-chaos`",
    )
    k8s_pod_exec: bool = Field(
        False,
        description="`up` also applies `k8s/base/chaos-rbac-exec.yaml`, letting the chaos "
        "identity exec into pods (pause and the kills mid-request need it; `up --pod-exec`)",
    )


class CommandSettings(SettingsGroup):
    """Variables that only set a flag's default; the command checks them as it checks the flag."""

    heading: ClassVar[str] = "Flags of the other commands"

    suite: str = Field("default", description="`run --suite`: a suite file or name")
    report_strict: bool = Field(False, description="`report --strict`")
    reprocess_from: str = Field("-", description="`reprocess --from`")
    reprocess_to: str = Field("+", description="`reprocess --to`")
    reprocess_percent_bp: int = Field(500, ge=1, le=10_000, description="`reprocess --percent-bp`")
    reprocess_correction_id: str | None = Field(None, description="`reprocess --correction-id`")
    reprocess_batch_size: Whole = Field(200, description="`reprocess --batch-size`")
    reprocess_batches_per_run: Whole = Field(20, description="`reprocess --batches-per-run`")
    reprocess_timeout_s: PositiveDuration = Field(600.0, description="`reprocess --timeout`")
    reprocess_no_wait: bool = Field(False, description="`reprocess --no-wait`")
    selftest_only: str | None = Field(None, description="`selftest --only`")
    selftest_quick: bool = Field(False, description="`selftest --quick`")
    selftest_no_control: bool = Field(False, description="`selftest --no-control`")
    selftest_keep_copies: bool = Field(False, description="`selftest --keep-copies`")
    selftest_catalogue: Path | None = Field(None, description="`selftest --catalogue`")
    selftest_list: bool = Field(False, description="`selftest --list`")


DEPRECATED = {"SAGAQUAKE_LOAD_PROCESSES": "SAGAQUAKE_PROCESSES"}  # old name -> the one name


def declared(name: str) -> tuple[type[SettingsGroup], str]:
    """The group and field that declare the variable `name` (KeyError when none does)."""
    for group in GROUPS:
        for field in group.model_fields:
            if group.env_name(field) == name:
                return group, field
    raise KeyError(f"{name} is not a setting of harness/settings.py")


def env_text(name: str) -> str | None:
    """The text of a SAGAQUAKE_ variable that some group declares (None when unset or empty),
    for a CLI flag's default, which the flag's own type then checks."""
    declared(name)
    old = next((o for o, new in DEPRECATED.items() if new == name and os.environ.get(o)), None)
    if old and not os.environ.get(name):
        _deprecated(old, name)
        return os.environ[old]
    return os.environ.get(name) or None


@functools.cache
def _deprecated(old: str, new: str) -> None:
    """One line on stderr, once per process: the old name still works, for now."""
    sys.stderr.write(f"warning: {old} is deprecated: set {new} instead\n")


def env_value(name: str) -> Any:
    """The value of a declared SAGAQUAKE_ variable, typed and checked by its group."""
    group, field = declared(name)
    return group.field_from_env(field)
