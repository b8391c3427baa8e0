"""Per role of the template: the actions granted, the actions seen called, and the grants never used.

    python -m localcloud.iam_report                 # runs the demo, then reports what it called
    python -m localcloud.iam_report recording.json  # reports a recording tests wrote

A recording is what the local cloud writes at stop when ``LOCALCLOUD_IAM_RECORDING`` names a file (or
``LocalCloud(iam_recording=...)``): observations of every run are merged into it, so
``LOCALCLOUD_IAM_RECORDING=.localcloud/iam.json pytest tests/provisioning/workflow`` then this report
shows what the workflows needed. A grant no run used is a candidate for removal, not a proof: a path
no test or demo takes (an error branch, an optional feature) may still need it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcloud.iam_policy import RequestContext, evaluate
from localcloud.iam_resources import describe_unmapped

__all__ = ["format_report", "main", "unused_grants"]


def unused_grants(granted: list[str], called: Mapping[str, int]) -> list[str]:
    """The granted action patterns that match none of the ``called`` actions."""
    unused = []
    for pattern in granted:
        if pattern.startswith("NOT "):
            continue
        policy = {"Statement": [{"Effect": "Allow", "Action": pattern, "Resource": "*"}]}
        if not any(evaluate([policy], RequestContext(action, "*")).value == "allowed" for action in called):
            unused.append(pattern)
    return unused


_GENERATED_NAME = re.compile(r"^.+?-([A-Za-z0-9]+)-[A-Z0-9]{8,13}$")


def by_template_resource(recording: Mapping[str, Any]) -> dict[str, Any]:
    """The recording with the roles of one template resource merged across stacks: CloudFormation
    names a function ``<stack>-<LogicalId>-<suffix>``, so the runs of several stacks of the same
    template add up under ``<LogicalId>``. Roles whose users do not follow that pattern stay apart."""
    merged: dict[str, Any] = {}
    for role, seen in recording.items():
        names = {str(p).split(":", 1)[-1] for p in seen.get("principals") or []}
        logical = {m.group(1) for name in names if (m := _GENERATED_NAME.match(name))}
        key = next(iter(logical)) if len(logical) == 1 else role
        into = merged.setdefault(key, {"principals": [], "granted": [], "allowed": {}, "denied": {}})
        into["principals"] = sorted(set(into["principals"]) | {str(p) for p in seen.get("principals") or []})
        into["granted"] = list(dict.fromkeys([*into["granted"], *(seen.get("granted") or [])]))
        for kind in ("allowed", "denied"):
            for action, count in (seen.get(kind) or {}).items():
                into[kind][action] = into[kind].get(action, 0) + int(count)
    return merged


def _label(role: str, seen: Mapping[str, Any]) -> str:
    if not role.startswith("arn:"):
        kinds = sorted({str(p).split(":", 1)[0] for p in seen.get("principals") or []})
        runs = len(seen.get("principals") or [])
        return f"{'/'.join(kinds)} {role}\n  ({runs} deployed cop{'y' if runs == 1 else 'ies'} seen)"
    principals = [str(p) for p in seen.get("principals") or []]
    names = sorted({p.split(":", 1)[-1] for p in principals})
    kinds = sorted({p.split(":", 1)[0] for p in principals})
    who = ", ".join(names) if names else "(no session)"
    return f"{'/'.join(kinds) or 'role'} {who}\n  role {role.rsplit('/', 1)[-1]}"


def format_report(recording: Mapping[str, Any]) -> str:
    """The report, one block per role, sorted by who ran with it."""
    blocks = []
    total_unused = 0
    for role, seen in sorted(recording.items(), key=lambda item: _label(*item)):
        granted = list(seen.get("granted") or [])
        allowed: dict[str, int] = dict(seen.get("allowed") or {})
        denied: dict[str, int] = dict(seen.get("denied") or {})
        unused = unused_grants(granted, {**allowed, **denied})
        total_unused += len(unused)
        lines = [_label(role, seen)]
        lines.append(f"  granted ({len(granted)}): {', '.join(granted) or '-'}")
        called = ", ".join(f"{a} x{n}" for a, n in sorted(allowed.items())) or "-"
        lines.append(f"  called  ({len(allowed)}): {called}")
        if denied:
            lines.append("  REFUSED: " + ", ".join(f"{a} x{n}" for a, n in sorted(denied.items())))
        lines.append(f"  unused  ({len(unused)}): {', '.join(unused) or '-'}")
        blocks.append("\n".join(lines))
    header = f"IAM report: {len(recording)} roles, {total_unused} granted action patterns no run called"
    called_everywhere = [
        tuple(action.split(":", 1))
        for seen in recording.values()
        for kind in ("allowed", "denied")
        for action in (seen.get(kind) or {})
    ]
    star = describe_unmapped([(service, operation) for service, operation in called_everywhere])
    footer = "checked on resource * for want of an ARN rule (localcloud/iam_resources.py): " + (
        ", ".join(star) or "none"
    )
    return "\n\n".join([header, *blocks, footer]) + "\n"


def _record_demo(path: Path) -> None:
    from cvpn.demo import run_demo

    os.environ["LOCALCLOUD_IAM_RECORDING"] = str(path)
    # The demo's narration goes to stderr, so stdout is the report alone.
    with tempfile.TemporaryDirectory(prefix="cvpn-demo-") as out, contextlib.redirect_stdout(sys.stderr):
        status = run_demo(out_dir=Path(out))
    if status != 0:
        raise SystemExit(f"the demo failed (exit {status}); no report")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.iam_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "recording", nargs="?", help="a recording (JSON); default: run the demo and record it"
    )
    args = parser.parse_args(argv)
    if args.recording:
        path = Path(args.recording)
        if not path.is_file():
            print(f"recording: {path} does not exist (write one with LOCALCLOUD_IAM_RECORDING={path})")
            return 2
    else:
        path = Path(tempfile.mkdtemp(prefix="iam-report-")) / "demo.json"
        _record_demo(path)
    try:
        recording = json.loads(path.read_text() or "{}")
    except ValueError as error:
        print(f"recording: {path} is not JSON ({error})")
        return 2
    sys.stdout.write(format_report(by_template_resource(recording)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
