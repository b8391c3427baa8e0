"""Lockout on demand, played against the local cloud: someone who knows a user name fails ten logins
as that user from five addresses, then the user signs in from their own address. The attack's
findings (R2, R3, then R6 for the genuine login) must block the attacking addresses, never the
person attacked: the client-connect handler keeps letting the victim in, and refuses the attackers.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from cvpn.monitoring_demo import LocalMonitoring, wait_for

ATTACKERS = [f"203.0.113.{index}" for index in range(120, 125)]
VICTIM_HOME = "198.51.100.150"  # the victim's own address (an office NAT, say)


def findings_about(monitoring: LocalMonitoring, seen: list[dict[str, Any]], user: str, rule: str) -> Any:
    """The finding ``rule`` fired about ``user`` on the bus (every event drained is kept in ``seen``)."""
    seen.extend(event["detail"] for event in monitoring.findings_on_bus())
    return next(
        (detail for detail in seen if detail["rule_id"] == rule and detail["entity"].get("username") == user),
        None,
    )


def alert_delivered(monitoring: LocalMonitoring, delivered: set[str], finding_id: str) -> bool:
    delivered.update(
        envelope.get("MessageAttributes", {}).get("finding_id", {}).get("Value", "")
        for envelope in monitoring.alert_envelopes()
    )
    return finding_id in delivered


def ingest_until(monitoring: LocalMonitoring, what: str, probe: Any, runs: int = 3) -> Any:
    """Run the ingest until ``probe`` finds what it looks for. The stack's own schedule also runs
    the ingest, and a run that finds a log group leased by that one skips it (the checkpoint's
    lease), so one run on demand is not always the run that reads the newest lines."""
    for _ in range(runs - 1):
        monitoring.run_ingest()
        try:
            return wait_for(what, probe, timeout=20)
        except TimeoutError:
            continue
    monitoring.run_ingest()
    return wait_for(what, probe, timeout=60)


def test_an_attack_on_a_user_blocks_the_attackers_not_the_user(monitoring: LocalMonitoring) -> None:
    """Given ten failed logins as a user from five addresses, when the ingest runs, then the HIGH R3
    finding blocks the five addresses and not the user, who then connects from home; when the ingest
    runs again, the CRITICAL R6 finding for that login is alerted and blocks nothing: the user is not
    on the blocklist, neither is their address, and they still connect, while an attacking address is
    refused even with a right password."""
    victim = f"vera-{uuid.uuid4().hex[:6]}"
    seen: list[dict[str, Any]] = []
    delivered: set[str] = set()
    monitoring.warm_client_connect_handler()
    for attempt in range(10):
        monitoring.connect(victim, ATTACKERS[attempt % 5], fail="Authentication failed")

    r3 = ingest_until(
        monitoring, "R3 about the victim", lambda: findings_about(monitoring, seen, victim, "R3")
    )
    assert r3["severity"] == "HIGH" and r3["counts"]["distinct_ips"] == 5
    wait_for("the R3 alert", lambda: alert_delivered(monitoring, delivered, r3["finding_id"]), timeout=60)

    genuine = monitoring.connect(victim, VICTIM_HOME)
    assert genuine.connected, genuine.error_msg_on_denied_connection
    blocked = {str(entry["pk"]) for entry in monitoring.blocklist()}
    assert {f"source#{address}" for address in ATTACKERS} <= blocked
    assert f"user#{victim}" not in blocked
    assert sorted(r3["attack_sources"]) == ATTACKERS

    try:
        r6 = ingest_until(
            monitoring, "R6 about the victim", lambda: findings_about(monitoring, seen, victim, "R6")
        )
    except TimeoutError as missed:
        raise AssertionError(f"{missed}\n{state_about(monitoring, victim)}") from missed
    assert r6["severity"] == "CRITICAL" and r6["entity"]["device_ip"] == VICTIM_HOME
    wait_for("the R6 alert", lambda: alert_delivered(monitoring, delivered, r6["finding_id"]), timeout=60)
    about_victim = [
        str(entry["pk"])
        for entry in monitoring.blocklist()
        if victim in str(entry["pk"]) or VICTIM_HOME in str(entry["pk"])
    ]
    assert about_victim == []

    again = monitoring.connect(victim, VICTIM_HOME)
    assert again.connected, again.error_msg_on_denied_connection
    attacker = monitoring.connect(victim, ATTACKERS[0])
    assert not attacker.connected
    assert ATTACKERS[0] in (attacker.error_msg_on_denied_connection or "")


def state_about(monitoring: LocalMonitoring, user: str) -> str:
    """What a missing finding about ``user`` leaves to look at: the clocks, the user's connection-log
    records, the ingest checkpoint, the stored items naming the user, and the ingest's own log."""
    clock = monitoring.cloud.clock
    lines = [
        f"emulated clock {clock.timestamp():.3f} (scale {clock.time_scale:g}), machine {time.time():.3f}",
        f"checkpoint {monitoring.checkpoint()}",
    ]
    lines += [f"record {json.dumps(r)}" for r in monitoring.log_records() if r.get("username") == user]
    dynamodb = monitoring.cloud.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for item in dynamodb.scan(TableName=table)["Items"]:
            text = json.dumps(item, default=str)
            if user in text:
                lines.append(f"{table}: {text[:2000]}")
    lines.append(monitoring.ingest_logs()[-8000:])
    return "\n".join(lines)
