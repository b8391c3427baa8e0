"""Shared helpers: percentiles, public prices and plain-text tables."""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRICES",
    "Prices",
    "Summary",
    "logging_endpoint",
    "progress",
    "render_table",
    "summarize",
    "time_calls",
]


@dataclass(frozen=True)
class Prices:
    """Public on-demand prices (us-east-1) the cost figures use."""

    state_transition_usd: float = 0.025 / 1000  # Step Functions Standard, per state transition
    lambda_gb_second_usd: float = 0.0000133334  # Lambda arm64, per GB-second
    lambda_request_usd: float = 0.20 / 1_000_000  # Lambda, per request

    def lambda_usd(self, requests: int, billed_seconds: float, memory_mb: int) -> float:
        """Lambda cost of ``requests`` invocations billed ``billed_seconds`` in total at ``memory_mb``."""
        return (
            requests * self.lambda_request_usd + billed_seconds * memory_mb / 1024 * self.lambda_gb_second_usd
        )

    def transitions_usd(self, transitions: int | float) -> float:
        """Step Functions cost of ``transitions`` state transitions."""
        return transitions * self.state_transition_usd


PRICES = Prices()


@dataclass(frozen=True)
class Summary:
    """Median and p95 of a sample (milliseconds unless said otherwise)."""

    median: float
    p95: float
    count: int

    def __str__(self) -> str:
        return f"median {self.median:7.2f}   p95 {self.p95:7.2f}   (n={self.count})"


def summarize(samples: Sequence[float]) -> Summary:
    """Median and nearest-rank 95th percentile of ``samples``."""
    if not samples:
        return Summary(math.nan, math.nan, 0)
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return Summary(statistics.median(ordered), ordered[rank - 1], len(ordered))


def time_calls(call: Callable[[], object], rounds: int, warmup: int = 3) -> list[float]:
    """Wall milliseconds of ``rounds`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def logging_endpoint(cloud: Any, log_group_name: str, *, stream: str | None = None) -> str:
    """A Client VPN endpoint on the local cloud whose connection logging writes to ``log_group_name``
    (which must exist): the ingest reads only groups an endpoint logs to. Its id.

    The local cloud's endpoint quota is raised as far as the benchmarks need (AWS raises it on request).
    """
    import dataclasses

    from localcloud.clientvpn.models import clientvpn_backends
    from localcloud.cloud import DEFAULT_ACCOUNT_ID
    from localcloud.sample_network import issue_certificates

    backend = clientvpn_backends[DEFAULT_ACCOUNT_ID][cloud.region]
    backend.quotas = dataclasses.replace(
        backend.quotas, endpoints_per_region=max(backend.quotas.endpoints_per_region, 200)
    )
    bundle, _ = issue_certificates()
    certificate_arn = cloud.client("acm").import_certificate(
        Certificate=bundle.certificate_pem.encode(),
        PrivateKey=bundle.private_key_pem.encode(),
        CertificateChain=bundle.ca_pem.encode(),
    )["CertificateArn"]
    options: dict[str, Any] = {"Enabled": True, "CloudwatchLogGroup": log_group_name}
    if stream:
        options["CloudwatchLogStream"] = stream
    answer = cloud.client("ec2").create_client_vpn_endpoint(
        ClientCidrBlock="10.200.0.0/22",
        ServerCertificateArn=certificate_arn,
        AuthenticationOptions=[
            {
                "Type": "certificate-authentication",
                "MutualAuthentication": {"ClientRootCertificateChainArn": certificate_arn},
            }
        ],
        ConnectionLogOptions=options,
    )
    return str(answer["ClientVpnEndpointId"])


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the report)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "  ") -> str:
    """A plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return indent + "  ".join(parts).rstrip()

    separator = indent + "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), separator, *(line(row) for row in cells[1:])])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def connection_log_line(
    endpoint_id: str,
    connection_id: str,
    status: str,
    device_ip: str,
    user: str,
    reason: str,
    started_ms: int | None,
    at_ms: int,
) -> str:
    """A connection-attempt record as Client VPN logs it (compact JSON, every value text, "NA" for
    not applicable): a session's start time, tunnel address and counters only once it started."""
    started = started_ms is not None
    return json.dumps(
        {
            "connection-log-type": "connection-attempt",
            "connection-attempt-status": status,
            "connection-reset-status": "NA",
            "connection-attempt-failure-reason": reason,
            "connection-id": connection_id,
            "client-vpn-endpoint-id": endpoint_id,
            "transport-protocol": "udp",
            "connection-start-time": _log_time(started_ms) if started_ms is not None else "NA",
            "connection-last-update-time": _log_time(at_ms),
            "client-ip": "10.0.1.2" if started else "NA",
            "common-name": "client1",
            "device-type": "mac",
            "device-ip": device_ip,
            "port": "50096",
            "ingress-bytes": "1024" if started else "0",
            "egress-bytes": "2048" if started else "0",
            "ingress-packets": "10" if started else "0",
            "egress-packets": "12" if started else "0",
            "connection-end-time": "NA",
            "username": user,
        },
        separators=(",", ":"),
    )


def _log_time(epoch_ms: int) -> str:
    """The log's time format: UTC, to the second, no zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_ms / 1000))
