"""`--local` is complete: the endpoint, region and stack of the local cloud `cvpn local up` runs, read
from the state file it writes (on any port), with explicit flags winning; a state left by a process that
ended is ignored, and a clean stop removes only its own state."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cvpn.common import (
    DEFAULT_LOCAL_URL,
    LocalState,
    local_state_path,
    read_local_state,
    remove_local_state,
    resolve_target,
    write_local_state,
)


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "local.json"
    monkeypatch.setenv("CVPN_LOCAL_STATE", str(path))
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return path


def _args(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {"local": False, "endpoint_url": None, "region": None, "stack_name": None}
    values.update(given)
    return argparse.Namespace(**values)


def _running(port: int = 45123, stack: str = "trial") -> LocalState:
    return LocalState(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        stack_name=stack,
        api_url="http://127.0.0.1:45124",
        webhook_secret="local-s",
        pid=os.getpid(),
    )


def test_local_finds_the_running_cloud_on_its_port(state_file: Path) -> None:
    write_local_state(_running())
    assert state_file.stat().st_mode & 0o777 == 0o600  # it holds the local webhook secret
    args = _args(local=True)
    resolve_target(args)
    assert (args.endpoint_url, args.region, args.stack_name) == (
        "http://127.0.0.1:45123",
        "us-east-1",
        "trial",
    )


def test_explicit_flags_win_over_the_state(state_file: Path) -> None:
    write_local_state(_running())
    args = _args(local=True, endpoint_url="http://127.0.0.1:5000", region="eu-west-1", stack_name="other")
    resolve_target(args)
    assert (args.endpoint_url, args.region, args.stack_name) == (
        "http://127.0.0.1:5000",
        "eu-west-1",
        "other",
    )
    args = _args(local=True, endpoint_url="http://127.0.0.1:5000")
    resolve_target(args)
    assert (args.region, args.stack_name) == ("us-east-1", "cvpn-autopilot")  # not the state's stack


def test_without_a_state_local_is_the_default_port_with_a_region(state_file: Path) -> None:
    args = _args(local=True)
    resolve_target(args)
    assert (args.endpoint_url, args.region, args.stack_name) == (
        DEFAULT_LOCAL_URL,
        "us-east-1",
        "cvpn-autopilot",
    )


def test_an_endpoint_without_any_region_gets_the_local_clouds(state_file: Path) -> None:
    args = _args(endpoint_url="http://127.0.0.1:5000")
    resolve_target(args)
    assert args.region == "us-east-1"


def test_the_state_of_an_ended_process_is_ignored_and_only_the_owner_removes_it(state_file: Path) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_local_state(
        LocalState(endpoint_url="http://127.0.0.1:1", region="us-east-1", pid=int(ended.stdout))
    )
    assert read_local_state() is None
    write_local_state(_running())
    remove_local_state(pid=os.getpid() + 1)
    assert read_local_state() is not None
    remove_local_state(pid=os.getpid())
    assert not state_file.exists()


def test_a_damaged_state_file_reads_as_none(state_file: Path) -> None:
    state_file.parent.mkdir(parents=True)
    for text in ("{not json", "[]", json.dumps({"endpoint_url": 3, "region": "us-east-1"})):
        state_file.write_text(text)
        assert read_local_state() is None


def test_the_state_lives_in_the_users_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CVPN_LOCAL_STATE", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert local_state_path() == tmp_path / ".local" / "state" / "cvpn" / "local.json"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert local_state_path() == tmp_path / "xdg" / "cvpn" / "local.json"
