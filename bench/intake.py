"""Webhook intake figures (printed, nothing asserted).

1. In process, per request (thread CPU time): signature verification of each scheme on the example
   Jira body, the payload-to-request mapping, and the whole intake decision (verify, map, deduplicate,
   start) with in-memory collaborators.
2. Through the local gateway, on loopback: p50/p99 of ``POST /webhooks/jira``, one at a time (warm),
   then under a burst of ``--burst`` signed deliveries (each a new ticket, so each starts an intake
   execution), ``--concurrency`` at a time, then the same burst replayed (duplicates: nothing starts).
   The source needs approval, so executions wait on their token (and are stopped afterwards); their
   approval task runs on the same machine during the burst.

Run: ``.venv/bin/python bench/intake.py [--rounds 2000] [--burst 200] [--concurrency 16]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The shared layer is what Lambda puts on the path as /opt/python; here it is the repository's copy.
for _path in (ROOT, ROOT / "layers" / "shared" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.common import progress, render_table  # noqa: E402
from cvpn_shared.access.mapping import map_request  # noqa: E402
from cvpn_shared.access.signatures import SignatureScheme, SigningSecrets, sign, verify_signature  # noqa: E402
from cvpn_shared.access.sources import parse_source_config  # noqa: E402
from cvpn_shared.access.start import StartResult, status_url_path  # noqa: E402
from cvpn_shared.access.webhooks import WebhookIntake  # noqa: E402

WEBHOOKS = ROOT / "events" / "webhooks"
SECRET = "bench-secret"


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """Nearest-rank p50, p99 and max of ``samples``."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan, math.nan, math.nan

    def rank(fraction: float) -> float:
        return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]

    return rank(0.50), rank(0.99), ordered[-1]


class _Memory:
    """In-memory sources, secrets, deliveries, starts and submissions (what the bench's in-process
    figure uses)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.claims: dict[str, dict[str, Any]] = {}
        self.submissions: dict[str, dict[str, Any]] = {}

    def get(self, source: str) -> Any:
        return self.config if source == "jira" else None

    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None:
        return {"current": SECRET}

    def claim(self, record: dict[str, Any], *, now: int) -> dict[str, Any] | None:
        existing = self.claims.get(record["delivery_key"])
        if existing is None:
            self.claims[record["delivery_key"]] = record
        return existing

    def release(self, delivery_key: str) -> None:
        self.claims.pop(delivery_key, None)

    def put(self, submission: dict[str, Any], *, replace: bool = False) -> None:
        self.submissions[submission["request_id"]] = submission

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str:
        return f"arn:aws:states:us-east-1:123456789012:execution:intake:{source}-{request_id}-{run}"

    def start(
        self,
        source: str,
        request: dict[str, Any],
        approval_required: bool,
        callback: dict[str, Any] | None,
        run: int = 1,
    ) -> StartResult:
        request_id = request["request_id"]
        return StartResult(
            request_id, self.execution_arn(source, request_id), status_url_path(request_id), False
        )


class _Tickets:
    """The permanent ticket record, in memory: a claim holds only against the run it expects."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def get(self, ticket_key: str) -> dict[str, Any] | None:
        item = self.items.get(ticket_key)
        return dict(item) if item is not None else None

    def claim(self, record: dict[str, Any], *, previous_run: int) -> bool:
        existing = self.items.get(record["ticket_key"])
        if (existing["run"] if existing else 0) != previous_run:
            return False
        self.items[record["ticket_key"]] = dict(record)
        return True

    def mark_started(self, ticket_key: str, run: int) -> None:
        item = self.items.get(ticket_key)
        if item is not None and item["run"] == run:
            item["state"] = "started"

    def release(self, ticket_key: str, run: int, previous: dict[str, Any] | None) -> None:
        item = self.items.get(ticket_key)
        if item is not None and item["run"] == run:
            if previous is None:
                del self.items[ticket_key]
            else:
                self.items[ticket_key] = dict(previous)


def _per_call(call: Callable[[], object], rounds: int, warmup: int = 20) -> tuple[float, float]:
    """p50 and p99 CPU microseconds of one call (thread CPU time: other load on the machine, which
    deschedules this thread, does not count)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(rounds):
        started = time.thread_time()
        call()
        samples.append((time.thread_time() - started) * 1_000_000)
    p50, p99, _ = percentiles(samples)
    return p50, p99


def _verifier(
    scheme: SignatureScheme, headers: dict[str, str], body: bytes, secrets: SigningSecrets, now: float
) -> Callable[[], object]:
    return lambda: verify_signature(scheme, headers, body, secrets, now=now)


def in_process(rounds: int) -> list[list[object]]:
    """Per-request costs in microseconds (p50, p99)."""
    body = (WEBHOOKS / "jira-issue-updated.json").read_bytes()
    payload = json.loads(body)
    secrets = SigningSecrets(SECRET, "previous-" + SECRET)
    now = time.time()
    rows: list[list[object]] = []
    for scheme in SignatureScheme:
        headers = sign(scheme, body, SECRET, timestamp=int(now))
        p50, p99 = _per_call(_verifier(scheme, headers, body, secrets, now), rounds)
        rows.append([f"verify {scheme.value} ({len(body)} B body)", p50, p99])
    raw_config = json.loads((WEBHOOKS / "sources" / "jira.json").read_text())
    config = parse_source_config("jira", raw_config)
    p50, p99 = _per_call(lambda: map_request(config, payload), rounds)
    rows.append(["map Jira payload -> validated request", p50, p99])

    memory = _Memory(raw_config)
    intake = WebhookIntake(
        sources=memory,
        secrets=memory,
        deliveries=memory,
        starter=memory,
        submissions=memory,
        tickets=_Tickets(),
        clock=time.time,
    )
    counter = iter(range(10**9))

    def receive() -> None:
        headers = {**sign(SignatureScheme.JIRA, body, SECRET, timestamp=0)}
        headers["x-atlassian-webhook-identifier"] = f"d-{next(counter)}"
        intake.receive("jira", headers, body.decode(), is_base64_encoded=False)

    p50, p99 = _per_call(receive, rounds)
    rows.append(["whole decision (verify, map, dedupe, start, record) in memory", p50, p99])
    return rows


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    return status, (time.perf_counter() - started) * 1000


def through_gateway(burst: int, concurrency: int) -> tuple[list[list[object]], dict[str, int]]:
    """Deploy template.yaml on a local cloud, configure a Jira source, send the burst."""
    from localcloud.cloud import LocalCloud
    from localcloud.sample_network import build_sample_network

    with LocalCloud(time_scale=60.0) as cloud:
        progress("deploying template.yaml on a local cloud")
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-autopilot",
            parameter_overrides={"OidcIssuerUrl": "https://issuer.bench.local", "OidcAudience": "bench-form"},
        )
        network = build_sample_network(cloud.client, region=cloud.region)
        prefix = stack.outputs["IntakeSecretsPrefix"]
        cloud.client("secretsmanager").create_secret(
            Name=f"{prefix}jira", SecretString=json.dumps({"current": SECRET})
        )
        config = json.loads((WEBHOOKS / "sources" / "jira.json").read_text())
        config.update(secret_id=f"{prefix}jira", approval="required", callback=None)
        config["defaults"].update(
            vpc_id=network.vpc_id,
            subnet_ids=network.subnet_ids[:2],
            server_certificate_arn=network.server_certificate_arn,
            authentication=[{"type": "active-directory", "directory_id": network.directory_id}],
            security_group_ids=[network.security_group_id],
        )
        cloud.client("ssm").put_parameter(
            Name=f"{stack.outputs['IntakeSourcesParameterPath']}/jira",
            Type="String",
            Value=json.dumps(config),
        )
        template = json.loads((WEBHOOKS / "jira-issue-updated.json").read_text())
        url = f"{cloud.api_url}/webhooks/jira"

        def delivery(index: int) -> tuple[bytes, dict[str, str]]:
            template["issue"]["key"] = f"BENCH-{index}"
            body = json.dumps(template).encode()
            headers = sign(SignatureScheme.JIRA, body, SECRET, timestamp=0)
            headers.update(
                {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": f"bench-{index}"}
            )
            return body, headers

        # Cold starts are not part of the burst: as many warm workers as requests in flight.
        warm = [delivery(-index) for index in range(1, 2 * concurrency + 1)]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            cold = [latency for _, latency in pool.map(lambda item: _post(url, *item), warm)]
        progress(f"warm-up: {len(cold)} deliveries, slowest {max(cold):.0f} ms (cold starts)")
        sequential = [_post(url, *delivery(-1000 - index))[1] for index in range(20)]
        deliveries = [delivery(index) for index in range(burst)]
        rows: list[list[object]] = [["one at a time, warm (20)", *percentiles(sequential), "-"]]
        statuses: dict[str, int] = {}
        for label in ("burst, new tickets", "burst replayed (duplicates)"):
            progress(f"{label}: {burst} signed deliveries, {concurrency} at a time")
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(lambda item: _post(url, *item), deliveries))
            elapsed = time.perf_counter() - started
            for status, _ in results:
                key = f"{label}: {status}"
                statuses[key] = statuses.get(key, 0) + 1
            rows.append([label, *percentiles([latency for _, latency in results]), f"{burst / elapsed:.1f}"])
        _stop_intake_executions(cloud, stack.outputs["IntakeStateMachineArn"])
        return rows, statuses


def _stop_intake_executions(cloud: Any, state_machine_arn: str) -> None:
    sfn = cloud.client("stepfunctions")
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    ):
        for execution in page["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"], error="BenchDone")


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2000, help="calls per in-process figure")
    parser.add_argument("--burst", type=int, default=200, help="deliveries in the gateway burst")
    parser.add_argument("--concurrency", type=int, default=16, help="deliveries in flight at once (bounded)")
    parser.add_argument("--skip-gateway", action="store_true", help="only the in-process figures")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    progress("in-process figures")
    out("Webhook intake, in process (CPU microseconds per request)")
    out(render_table(["step", "p50 us", "p99 us"], in_process(args.rounds)))
    if not args.skip_gateway:
        rows, statuses = through_gateway(args.burst, max(1, min(args.concurrency, 64)))
        out("")
        out(f"Webhook intake through the local gateway: burst of {args.burst}, {args.concurrency} in flight")
        out(render_table(["POST /webhooks/jira", "p50 ms", "p99 ms", "max ms", "req/s"], rows))
        out("  answers: " + "; ".join(f"{key} x {count}" for key, count in statuses.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
