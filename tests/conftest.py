"""Test settings shared by every suite: offline, fake credentials, one region."""

from __future__ import annotations

import os
import tempfile

import pytest

# Tests never reach AWS: fake credentials and a fixed region before anything creates a client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
# `cvpn local up` started by a test tells other commands where it is in a file of the test run's own,
# never in the user's state folder (where a local cloud the user runs may be described).
os.environ["CVPN_LOCAL_STATE"] = os.path.join(tempfile.mkdtemp(prefix="cvpn-test-state-"), "local.json")


@pytest.fixture
def emulated_clock():
    """A fresh emulated clock (time scale 1) made current for one test, then restored."""
    from localcloud.clock import Clock, get_clock, set_clock

    previous = get_clock()
    clock = set_clock(Clock(time_scale=1.0))
    yield clock
    set_clock(previous)


@pytest.fixture(autouse=True, scope="session")
def _atomic_dynamodb_writes():
    """moto as DynamoDB is: a conditional write is atomic, also when tests race threads on it (the
    local cloud installs the same, see localcloud.dynamodb_atomic)."""
    from localcloud import dynamodb_atomic

    dynamodb_atomic.install()
    yield
