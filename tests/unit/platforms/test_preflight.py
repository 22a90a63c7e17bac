"""What the local platform says before it starts anything: missing binaries, taken ports, an
unwritable run folder. One line each, naming the problem and the fix."""

from __future__ import annotations

import os
import socket

import pytest

from harness.errors import ConfigError, MissingBinaryError, PortInUseError
from harness.platforms.local import LocalPlatform
from harness.platforms.local_config import find_binary
from harness.runs import new_run_dir
from harness.settings import LocalOptions, LocalPorts, isolated_env

pytestmark = pytest.mark.unit


def test_a_missing_binary_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        MissingBinaryError, match=r"'redis-server' was not found: .*apt-get install redis-server"
    ):
        find_binary("redis-server")


def test_a_taken_port_is_named_with_its_use_and_owner(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAGAQUAKE_STATE_DIR", str(tmp_path / "state"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = LocalPorts(**{**LocalPorts.free().__dict__, "redis": port})
        with pytest.raises(PortInUseError) as err:
            LocalPlatform(tmp_path, ports, LocalOptions()).up()
    message = str(err.value)
    assert f"port {port} (redis) is already in use" in message
    assert "SAGAQUAKE_REDIS_PORT" in message
    assert f"by pid {os.getpid()} (" in message  # the owner: this test process
    assert not (tmp_path / "platform" / "supervisord.conf").exists()  # nothing was started


def test_an_unwritable_reports_folder_says_which_and_how(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"cannot write the run folder .*SAGAQUAKE_REPORTS_DIR"):
        new_run_dir("stack", root=blocker / "reports")


def test_bad_option_values_are_config_errors(monkeypatch) -> None:
    monkeypatch.setenv("SAGAQUAKE_REDIS_APPENDFSYNC", "sometimes")
    with pytest.raises(ConfigError, match="'sometimes' is not one of always, everysec, no"):
        LocalOptions.from_env()
    monkeypatch.setenv("SAGAQUAKE_REDIS_PORT", "six")
    with pytest.raises(ConfigError, match="SAGAQUAKE_REDIS_PORT='six' is not a whole number"):
        LocalPorts.from_env()


def test_ports_round_trip_through_the_environment(monkeypatch, tmp_path) -> None:
    ports = LocalPorts.free()
    assert ports.as_env()["SAGAQUAKE_REDIS_PORT"] == str(ports.redis)
    for name, value in ports.as_env().items():
        monkeypatch.setenv(name, value)
    assert LocalPorts.from_env() == ports
    env = isolated_env(tmp_path)
    assert env["SAGAQUAKE_STATE_DIR"] == str(tmp_path / "state")
    assert env["SAGAQUAKE_REPORTS_DIR"] == str(tmp_path / "reports")
    assert env["SAGAQUAKE_ORDER_PORT"] != str(LocalPorts().order)  # free ports, not the defaults
