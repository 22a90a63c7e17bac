"""Run folders: one per run under reports/, named by time and label, with reports/latest pointing at the newest."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import orjson

from harness.errors import ConfigError
from harness.settings import reports_root

__all__ = [
    "GATE_FILE",
    "new_run_dir",
    "read_json",
    "read_run_json",
    "update_run_json",
    "write_json",
]

GATE_FILE = "gate.json"  # what `sagaquake run` decided (harness/run/gate.py writes it)


def new_run_dir(label: str, root: Path | None = None) -> Path:
    """Create reports/<YYYYmmdd-HHMMSS>-<label>/ (unique) and point reports/latest at it."""
    root = root or reports_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{label}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{stamp}-{label}-{n}"
    try:
        run_dir.mkdir(parents=True)
        probe = run_dir / ".writable"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write the run folder {str(run_dir)!r}: {exc.strerror}; set SAGAQUAKE_REPORTS_DIR to a writable folder"
        ) from None
    latest = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        tmp.replace(latest)
    except OSError:
        pass  # a file system without symlinks: the printed path is enough
    update_run_json(run_dir, run_id=run_dir.name, started_at=time.time())
    return run_dir


def write_json(path: Path, data: Any) -> Path:
    """Write one JSON file of the run folder atomically: a reader (or a crash) never sees half
    of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    tmp.replace(path)
    return path


def read_json(path: Path) -> dict[str, Any] | None:
    """One JSON object of the run folder, or None when it is missing."""
    if not path.exists():
        return None
    return dict(json.loads(path.read_text()))


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "run.json") or {}


def update_run_json(run_dir: Path, **values: Any) -> dict[str, Any]:
    """Merge values into run.json (written atomically, so a crash never leaves half a file)."""
    data = read_run_json(run_dir)
    data.update(values)
    write_json(run_dir / "run.json", data)
    return data
