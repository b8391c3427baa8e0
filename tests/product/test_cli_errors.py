"""Every `cvpn` subcommand, given bad input and no reachable AWS, answers one line naming the cause and
what to do, with a non-zero exit status, never a traceback.

The subcommands are read from the parser, so a new one is covered as soon as it exists. Each runs as a
newcomer's shell would run it: an empty HOME (no ~/.aws), no AWS variables, and, where it reaches
anything, an endpoint nothing listens on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvpn.cli import build_parser, main
from tests.fixtures import REPO_ROOT

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)

# Positionals by their metavar or name: a value that names nothing.
BAD_POSITIONALS = {
    "REQUEST.json": "no-such-request.json",
    "FILE": "no-such-delivery.json",
    "id": "NET-0000-UNKNOWN",
    "ENDPOINT_ID": "cvpn-endpoint-0123456789abcdef0",
    "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
    "operation": "NoSuchOperation",
    "TICKET": "NET-0000-UNKNOWN",
    "GRANT_ID": "g-00000000000000000000000000000000",
    "ENDPOINT_OR_REQUEST": "NET-0000-UNKNOWN",
    "ENDPOINT": "cvpn-endpoint-0123456789abcdef0",
    "SERIAL": "not-hex",
}
GOOD_DOCUMENTS = {
    ("provision",): REPO_ROOT / "events" / "requests" / "seed-active-directory.json",
    ("plan",): REPO_ROOT / "events" / "requests" / "seed-active-directory.json",
    ("apply",): REPO_ROOT / "events" / "requests" / "seed-active-directory.json",
    ("request", "submit"): REPO_ROOT / "events" / "webhooks" / "jira-issue-updated.json",
}
# Required options, and options that make the command reach something.
EXTRA = {
    ("decommission",): ["--request-id", "NET-0000-UNKNOWN"],
    ("adopt",): ["--request-id", "NET-0000-UNKNOWN"],
    ("request", "submit"): ["--source", "jira", "--secret", "s"],
    ("request", "reopen"): ["--source", "jira"],
    ("local", "faults"): ["--throttle-rate", "0.5"],
    ("ca", "create"): ["--crl-bucket", "no-such-bucket"],
}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, (*path, name))
            return
    yield path


def _parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    values = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        key = action.metavar if isinstance(action.metavar, str) else action.dest
        values.append(BAD_POSITIONALS[key])
    return values


COMMANDS = sorted(_leaves(build_parser()))


@pytest.fixture
def newcomer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shell with an empty HOME, no AWS variables and no local cloud state."""
    import boto3

    home = tmp_path / "home"
    home.mkdir()
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("CVPN_LOCAL_STATE", raising=False)
    monkeypatch.delenv("CVPN_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # refused connections fail at once
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.chdir(tmp_path)
    return home


def _invocations(path: tuple[str, ...], unreachable: str) -> list[list[str]]:
    """Ways a newcomer runs ``path`` wrong: as is, and against an endpoint nothing answers on."""
    parser = _parser_of(path)
    options = _options(parser)
    base = [*path, *_positionals(parser), *EXTRA.get(path, [])]
    if path == ("local", "up"):
        return [[*base, "--template", "no-such-template.yaml"]]
    if path == ("demo",):
        return [[*base, "--time-scale", "0"]]
    runs = [base]
    if "--endpoint-url" in options:
        runs.append([*base, "--endpoint-url", unreachable])
        runs.append([*base, "--local"])
        runs.append([*base, "--endpoint-url", unreachable, "--region", "eu-west-1", "--stack-name", "nope"])
    if "--url" in options:
        runs = [[*base, "--url", unreachable]]
    if "--base-url" in options:
        runs.append([*base, "--base-url", unreachable])
        runs.append([*base, "--local"])
    # A document that reads well, so the command goes on to what it cannot reach.
    good = GOOD_DOCUMENTS.get(path)
    if good is not None:
        readable = [str(good) if value == base[len(path)] else value for value in base]
        runs.append([*readable, "--local"])
        if "--endpoint-url" in options:
            runs.append([*readable, "--endpoint-url", unreachable, "--region", "eu-west-1"])
        if "--base-url" in options:
            runs.append([*readable, "--base-url", unreachable])
    return runs


def _assert_one_line_error(argv: list[str], code: int, err: str) -> None:
    assert code != 0, f"cvpn {' '.join(argv)} exited 0"
    assert "Traceback" not in err, f"cvpn {' '.join(argv)}:\n{err}"
    lines = [line for line in err.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):
        assert lines[-1].startswith("cvpn"), err  # argparse: usage, then "cvpn ...: error: ..."
        return
    assert len(lines) == 1 and lines[0].startswith("cvpn: error: "), f"cvpn {' '.join(argv)}:\n{err}"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(path) for path in COMMANDS])
def test_every_subcommand_answers_bad_input_without_a_traceback(
    path: tuple[str, ...], newcomer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given no AWS configuration and nothing listening, when a newcomer runs the subcommand with a
    value that names nothing, then it exits non-zero with one `cvpn: error:` line (or argparse's usage
    for a malformed command line) and no traceback, whatever --local, --endpoint-url or --base-url."""
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    state = newcomer / "state.json"
    for argv in _invocations(path, unreachable):
        # --local finds a local cloud that is gone: its state names a port nothing listens on.
        state.write_text(json.dumps({"endpoint_url": unreachable, "region": "us-east-1", "pid": os.getpid()}))
        os.environ["CVPN_LOCAL_STATE"] = str(state)
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        finally:
            os.environ.pop("CVPN_LOCAL_STATE", None)
        _assert_one_line_error(argv, code, capsys.readouterr().err)


def test_the_local_cloud_on_a_port_in_use_is_a_one_line_error(
    newcomer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["local", "up", "--port", str(port), "--template", str(REPO_ROOT / "template.yaml")]
        code = main(argv)
    err = capsys.readouterr().err
    _assert_one_line_error(argv, code, err)
    assert f"--port {port}: already in use" in err and "choose another port with --port N" in err


def test_no_region_and_no_credentials_name_what_to_do(
    newcomer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first command a newcomer runs against AWS without configuration says what is missing."""
    request = REPO_ROOT / "events" / "requests" / "seed-active-directory.json"
    assert main(["provision", str(request)]) == 1
    assert "no AWS region: give --region, set AWS_DEFAULT_REGION, or use --local" in capsys.readouterr().err
    assert main(["findings", "--region", "eu-west-1"]) == 1
    assert "no AWS credentials" in capsys.readouterr().err


def test_a_shell_without_aws_gets_one_line_in_a_real_process(tmp_path: Path) -> None:
    """The same in a process of its own, as a shell runs it: `cvpn status` against nothing."""
    environment = {key: value for key, value in os.environ.items() if key not in AWS_VARIABLES}
    environment.update(HOME=str(tmp_path), CVPN_LOCAL_STATE=str(tmp_path / "none.json"))
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvpn.cli",
            "status",
            "NET-1",
            "--endpoint-url",
            f"http://127.0.0.1:{_closed_port()}",
        ],
        cwd=REPO_ROOT,
        env={**environment, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_MAX_ATTEMPTS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode != 0
    assert "Traceback" not in answer.stderr
    assert answer.stderr.startswith("cvpn: error: cannot reach http://127.0.0.1:"), answer.stderr
    assert "cvpn local up" in answer.stderr
