"""The sagaquake Chaos Toolkit control: what every experiment of scenarios/chaos declares once.

```yaml
controls:
  - name: sagaquake
    provider:
      type: python
      module: harness.chaos.control
      arguments:
        safeguard: {grace_s: 30, every_s: 1, limits: [...]}   # optional, see safeguard.py
```

It makes the Chaos Toolkit runtime keep sagaquake's promises, under `chaos run` as under
`sagaquake chaos`:

- a method action that fails (a fault that did not land: `FaultNotLanded`) fails the
  experiment and stops the method, instead of the experiment passing with a failed step;
- a rollback that fails fails the experiment (the stack may not be as it was);
- the safeguard watches its limits while a fault is on and aborts the method gracefully when
  one stays out of budget beyond the grace period (status `aborted`, rollbacks still run);
- an experiment whose steady state did not hold before the method (so nothing was injected)
  ends `failed`, not `completed` as chaoslib has it;
- a first Ctrl-C during the rollbacks is held back (a second one gives up on them);
- the journal is saved as `<run_dir>/chaos/<experiment>.journal.json`, with a `sagaquake`
  section: run folder, platform, the fault windows this run wrote, the safeguard's record.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import InterruptExecution, InvalidControl
from chaoslib.exit import exit_gracefully
from chaoslib.run import RunEventHandler

from harness.chaos import ambiguous, blue_green, midrequest, probes
from harness.chaos.context import ChaosContext, chaos_context
from harness.chaos.faults import ensure_faults_file, read_faults
from harness.chaos.safeguard import Limit, Safeguard, parse_safeguard
from harness.chaos.state import read_state
from harness.errors import HarnessError
from harness.runs import RunFolder, write_json

__all__ = [
    "after_method_control",
    "before_experiment_control",
    "before_method_control",
    "cleanup_control",
    "configure_control",
    "journal_path",
    "primitives_needed",
    "save_journal",
    "unsupported_primitive",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

PROBES = {name: getattr(probes, name) for name in probes.__all__ if name not in ("within",)}
PROBES.pop("CANARY_LEDGER", None)

_RUN: _Run | None = None


def journal_path(run_dir: Path, experiment: str) -> Path:
    return RunFolder(run_dir).journal(experiment)


def save_journal(journal: dict[str, Any], path: Path) -> Path:
    """Write the journal atomically (a crash never leaves half a file)."""
    return write_json(path, journal)


class _Run(RunEventHandler):
    """One experiment run as the control follows it through chaoslib's events."""

    def __init__(self, ctx: ChaosContext, configuration: dict[str, Any]) -> None:
        self.ctx = ctx
        self.configuration = configuration
        self.started = time.time()
        self.journal: dict[str, Any] | None = None
        self.phase = "before"
        self.failed_actions: list[str] = []
        self.failed_rollbacks: list[str] = []
        self.safeguard: Safeguard | None = None
        self.error: str | None = None
        self._sigint: Any = None
        self._sigint_seen = False
        self.action_running = False

    # chaoslib events (main thread)

    def running(self, experiment: Any, journal: Any, *args: Any) -> None:
        self.journal = journal

    def start_method(self, experiment: Any) -> None:
        self.phase = "method"

    def method_completed(self, experiment: Any, state: Any = None) -> None:
        self.phase = "after"
        self.stop_safeguard()

    def start_activity(self, activity: Any) -> None:
        if self.phase == "method" and activity.get("type") == "action":
            self.action_running = True

    def activity_completed(self, activity: Any, run: Any) -> None:
        self.action_running = False
        if not isinstance(run, dict) or run.get("status") != "failed":
            return
        name = f"{activity.get('name')}: {_last_line(run.get('exception'))}"
        if "InterruptExecution" in name and self.journal is not None:
            self.journal["status"] = "interrupted"  # SIGTERM inside an activity: stop here
            return
        if self.phase == "method" and activity.get("type") == "action":
            self.failed_actions.append(name)
            if self.journal is not None:
                self.journal["status"] = "failed"  # chaoslib stops the method on this
            logger.error("action %s failed; the experiment fails", name)
        elif self.phase == "rollbacks":
            self.failed_rollbacks.append(name)

    def start_rollbacks(self, experiment: Any) -> None:
        self.phase = "rollbacks"
        self.stop_safeguard()
        if threading.current_thread() is threading.main_thread():
            self._sigint = signal.signal(signal.SIGINT, self._hold_sigint)

    def rollbacks_completed(self, experiment: Any, journal: Any) -> None:
        self.phase = "done"
        if self._sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None

    def finish(self, journal: Any) -> None:
        self.stop_safeguard()
        self.rollbacks_completed(None, journal)
        if not isinstance(journal, dict):
            return
        extra = journal.setdefault("sagaquake", {})
        fired = self.safeguard.fired if self.safeguard else None
        if fired:
            journal["status"] = "aborted"
        elif self.failed_actions and journal.get("status") != "interrupted":
            journal["status"] = "failed"
        before = (journal.get("steady_states") or {}).get("before")
        if isinstance(before, dict) and before.get("steady_state_met") is False:
            # chaoslib calls this "completed": the method never ran, nothing was injected
            journal["status"] = "failed"
            extra["not_run"] = (
                "the steady state did not hold before the method: nothing was injected"
            )
        if self.failed_rollbacks:
            journal["status"] = "failed"
        extra.update(
            experiment=self.ctx.experiment,
            platform=self.ctx.platform.name,
            run_dir=str(self.ctx.run_dir),
            compress=self.ctx.compress,
            failed_actions=self.failed_actions,
            failed_rollbacks=self.failed_rollbacks,
            faults=[
                w
                for w in read_faults(self.ctx.run_dir)
                if w.get("experiment") == self.ctx.experiment
                and (w.get("started_at") or 0) >= self.started - 1
            ],
            safeguard=self.safeguard.summary() if self.safeguard else None,
        )
        if self.error:
            extra["control_error"] = self.error
        try:
            save_journal(journal, journal_path(self.ctx.run_dir, self.ctx.experiment))
        except OSError as exc:
            logger.error("could not save the journal in %s: %s", self.ctx.run_dir, exc)

    def _hold_sigint(self, signum: int, frame: Any) -> None:
        if self._sigint_seen:
            raise KeyboardInterrupt
        self._sigint_seen = True
        logger.warning(
            "rollbacks are putting the stack back; Ctrl-C again to abandon them "
            "(the stack may then stay broken)"
        )

    # the safeguard

    def start_safeguard(self) -> None:
        if self.safeguard is not None:
            self.safeguard.start()

    def stop_safeguard(self) -> None:
        if self.safeguard is not None:
            self.safeguard.stop()

    def fault_on(self) -> bool:
        """An action runs, or a fault window is still open (a lowered limit outlives its action)."""
        return self.action_running or bool(read_state(self.ctx.run_dir).get("open_windows"))

    def measure(self, limit: Limit) -> Any:
        return PROBES[limit.probe](**limit.arguments, configuration=self.configuration)

    def abort(self, record: dict[str, Any]) -> None:
        """Interrupt the method as `chaos run`'s SIGUSR1 does: gracefully, rollbacks run."""
        if callable(signal.getsignal(signal.SIGUSR1)):
            exit_gracefully()  # chaoslib's handler: SystemExit in the main thread
        else:
            _thread.interrupt_main()


def configure_control(
    experiment: Any = None,
    configuration: Any = None,
    secrets: Any = None,
    event_registry: Any = None,
    safeguard: Any = None,
    **_: Any,
) -> None:
    """Called once when the experiment starts: find the stack, follow the run, arm the safeguard."""
    global _RUN
    configuration = configuration if configuration is not None else {}
    try:
        ctx = chaos_context(configuration)
    except HarnessError as exc:
        logger.error("sagaquake control: %s", exc)
        _RUN = None
        _ERRORS.append(str(exc))
        return
    ensure_faults_file(ctx.run_dir)
    run = _Run(ctx, configuration)
    run.error = unsupported_primitive(ctx.platform, experiment)
    if safeguard:
        try:
            spec = substitute(safeguard, configuration, secrets)
            limits, grace, every = parse_safeguard(spec, PROBES)
            limits = [limit.scaled(ctx.compress) for limit in limits]
            run.safeguard = Safeguard(
                limits, grace, every, run.measure, run.abort, armed=run.fault_on
            )
        except HarnessError as exc:
            run.error = f"invalid safeguard: {exc}"
            logger.error("sagaquake control: %s", run.error)
    if event_registry is not None:
        event_registry.register(run)
    _RUN = run


_ERRORS: list[str] = []


def primitives_needed(experiment: Any) -> list[str]:
    """The optional fault primitives (pause, partition, reply_loss, side_by_side) the
    experiment's method uses."""
    needed = []
    for activity in (experiment or {}).get("method") or []:
        provider = activity.get("provider") or {}
        if provider.get("module") in (ambiguous.__name__, midrequest.__name__, blue_green.__name__):
            primitive = ambiguous.primitive_of(str(provider.get("func")))
            if primitive and primitive not in needed:
                needed.append(primitive)
    return needed


def unsupported_primitive(platform: Any, experiment: Any) -> str | None:
    """Why the experiment cannot run on `platform`, in one line, or None: asked before anything
    starts, so a fault that cannot be injected is never half-applied."""
    for primitive in primitives_needed(experiment):
        why = platform.unsupported(primitive)
        if why:
            return (
                f"this experiment needs {primitive.replace('_', ' ')}, which cannot run here: {why}"
            )
    return None


def before_experiment_control(context: Any, **_: Any) -> None:
    """Refuse to start when the control could not set itself up (no stack, a bad safeguard)."""
    problem = _ERRORS[-1] if _ERRORS else (_RUN.error if _RUN else None)
    if problem:
        _ERRORS.clear()
        raise InterruptExecution(f"sagaquake control: {problem}")


def before_method_control(context: Any, **_: Any) -> None:
    if _RUN is not None:
        _RUN.start_safeguard()


def after_method_control(context: Any, **_: Any) -> None:
    if _RUN is not None:
        _RUN.stop_safeguard()


def cleanup_control() -> None:
    global _RUN
    if _RUN is not None:
        _RUN.stop_safeguard()
    _RUN = None
    _ERRORS.clear()


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: the safeguard's shape, before any value is substituted."""
    spec = (control.get("provider") or {}).get("arguments", {}).get("safeguard")
    if spec is None:
        return
    try:
        parse_safeguard(spec, PROBES, placeholders=True)
    except HarnessError as exc:
        raise InvalidControl(f"control {control.get('name')!r}: {exc}") from None


def _last_line(exception: Any) -> str:
    if isinstance(exception, list) and exception:
        return str(exception[-1]).strip()
    return str(exception or "failed").strip()
