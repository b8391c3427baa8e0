"""Fixtures for the connection simulation: an emulated clock that stands still, moto, an endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from localcloud.clock import Clock, get_clock, set_clock
from tests.localcloud.connections.support import LOG_GROUP, REGION, FakeEndpoint


@pytest.fixture
def clock() -> Iterator[Clock]:
    """An emulated clock that only moves when a test advances it (starts at the current minute)."""
    previous = get_clock()
    frozen = set_clock(Clock(time_scale=1e-9, start=float(int(time.time()) // 60 * 60)))
    yield frozen
    set_clock(previous)


@pytest.fixture
def aws(clock: Clock) -> Iterator[None]:
    """moto in-process, with fake credentials and the connection log group in place."""
    with mock_aws():
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
        yield


@pytest.fixture
def endpoint(aws: None) -> FakeEndpoint:
    """An available endpoint with mutual TLS and connection logging to LOG_GROUP / LOG_STREAM."""
    return FakeEndpoint()
