"""Cold-start import cost of every handler, against the aims (printed, nothing asserted).

Each ``functions/<area>/<function>/app.py`` is imported as Lambda imports it, in a fresh interpreter
per run, under ``python -X importtime``: the function's folder and the shared layer's ``python/``
folder first on ``sys.path``, the variables the Lambda service sets (``AWS_REGION``,
``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_NAME``, the X-Ray ones under active tracing, ...) and
the function's environment from ``template.yaml`` (Globals, then its own; references to resources
become placeholders, parameters their defaults). Only what the handler import itself loads counts,
not the interpreter's start-up.

Per handler, the best of ``--runs`` runs (lowest total):
- ms: the import's cumulative time as ``-X importtime`` reports it (what the aims judge);
- cpu ms: the processor time the import took; well below ms, the machine was busy with others;
- modules: how many modules the import loaded;
- top three: the packages whose own modules cost most, as the summed self time of every module of a
  top-level package (``botocore`` is all ``botocore.*``). These add up to at most the total, and name
  what to avoid importing; ``--detail N`` adds the N largest cumulative entries, which say through
  which import a package came in.

Aims: every handler under 150 ms, the client-connect handler (run while a person waits to connect)
under 100 ms. Figures on a shared machine are noisy; compare runs made minutes apart.

A second table imports, the same way, the libraries the handlers are built on (botocore for the
clients, Powertools' logger and metrics, pydantic with one model), alone and together: a handler
that calls AWS, logs and parses with them cannot import faster than the three together, whatever
its own code.

Run: ``.venv/bin/python bench/handler_imports.py [--runs 3] [--only client_connect] [--detail 8]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, Python puts bench/ first on sys.path; the repository root is what we import from.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import progress, render_table  # noqa: E402

LAYER = ROOT / "layers" / "shared" / "python"
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
AIM_MS = 150.0
CLIENT_CONNECT = "monitoring/client_connect"
CLIENT_CONNECT_AIM_MS = 100.0
MARKER = "handler-import-starts"

# Runs in the fresh interpreter: the path as Lambda sets it, then the statement alone (the marker
# on stderr separates it from the interpreter's own start-up in -X importtime's report).
PROBE = f"""
import sys, time
folder, layer, statement = sys.argv[1:4]
sys.path[0:1] = [folder, layer]
sys.stderr.write("{MARKER}\\n")
sys.stderr.flush()
started = time.process_time()
exec(statement)
print((time.process_time() - started) * 1000)
for name in ("app", "cvpn_shared"):
    print(getattr(sys.modules.get(name), "__file__", "-"))
"""

# The libraries the handlers are built on: a floor under the figures of those that use all three.
REFERENCES = {
    "botocore (the clients)": "import botocore.config, botocore.session",
    "Powertools (logger, metrics)": "from aws_lambda_powertools import Logger, Metrics",
    "pydantic (and one model)": "from pydantic import BaseModel\nclass Probe(BaseModel):\n    value: str",
}
REFERENCES["the three together"] = "\n".join(REFERENCES.values())


@dataclass(frozen=True)
class Handler:
    """One handler: its folder under functions/ and the environment Lambda would give it (or a
    reference: a statement run with the layer's folder as the function's)."""

    name: str  # <area>/<function>
    folder: Path
    environment: dict[str, str]
    statement: str = "import app"


@dataclass
class ImportRun:
    """What one import of a handler cost."""

    total_ms: float
    modules: int
    self_ms_by_package: dict[str, float]
    cumulative: list[tuple[float, str]] = field(default_factory=list)
    cpu_ms: float = 0.0

    def top_packages(self, count: int) -> list[tuple[str, float]]:
        ranked = sorted(self.self_ms_by_package.items(), key=lambda item: item[1], reverse=True)
        return ranked[:count]


def handlers(template_path: Path = TEMPLATE) -> list[Handler]:
    """Every functions/*/*/app.py with the environment the template gives its function."""
    from localcloud.language_extensions import load_expanded_template

    template = load_expanded_template(template_path)
    parameters = template.get("Parameters", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    by_folder: dict[Path, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code_uri, str):
            by_folder[(ROOT / code_uri).resolve()] = (logical_id, {**globals_, **properties})
    found = []
    for app in sorted(ROOT.glob("functions/*/*/app.py")):
        folder = app.parent.resolve()
        logical_id, properties = by_folder.get(folder, (folder.name, dict(globals_)))
        variables = {
            **((globals_.get("Environment") or {}).get("Variables") or {}),
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {name: _resolve(value, parameters) for name, value in variables.items()}
        environment.update(_lambda_environment(logical_id, folder, properties))
        found.append(Handler(f"{folder.parent.name}/{folder.name}", folder, environment))
    return found


def _resolve(value: Any, parameters: dict[str, Any]) -> str:
    """A template value as the function would see it, closely enough for an import."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return str(parameters[value["Ref"]].get("Default", ""))
    if isinstance(value, dict):
        return f"bench-placeholder-{'-'.join(str(key) for key in value)}"
    return str(value)


def _lambda_environment(logical_id: str, folder: Path, properties: dict[str, Any]) -> dict[str, str]:
    """The variables the Lambda service itself sets in the function's sandbox."""
    environment = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{properties.get('Runtime', 'python3.13')}",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(folder),
        "_HANDLER": str(properties.get("Handler", "app.lambda_handler")),
        "TZ": ":UTC",
    }
    if properties.get("Tracing") == "Active":
        environment["AWS_XRAY_CONTEXT_MISSING"] = "LOG_ERROR"
        environment["AWS_XRAY_DAEMON_ADDRESS"] = "169.254.79.129:2000"
    return environment


def references() -> list[Handler]:
    """The libraries the handlers are built on, each on its own, in a function's environment."""
    environment = _lambda_environment("Reference", LAYER, {"Tracing": "Active"})
    return [Handler(name, LAYER, environment, statement) for name, statement in REFERENCES.items()]


def import_once(handler: Handler) -> ImportRun:
    """Import the handler in a fresh interpreter under -X importtime and read its report."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, str(handler.folder), str(LAYER), handler.statement],
        capture_output=True,
        text=True,
        cwd=handler.folder,
        env={**base, **handler.environment},
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"{handler.name} does not import:\n{answer.stderr[-3000:]}")
    cpu_ms, app_file, layer_file = answer.stdout.split()[:3]
    if handler.statement == "import app":
        if not Path(layer_file).resolve().is_relative_to(LAYER):
            raise RuntimeError(f"{handler.name} imported cvpn_shared from {layer_file}, not from {LAYER}")
        if Path(app_file).resolve().parent != handler.folder:
            raise RuntimeError(f"{handler.name} imported app from {app_file}")
    run = parse_importtime(answer.stderr)
    run.cpu_ms = float(cpu_ms)
    return run


def parse_importtime(report: str) -> ImportRun:
    """The handler's part of a -X importtime report: the lines after the marker."""
    lines = report.splitlines()
    if MARKER not in lines:
        raise RuntimeError("the probe's marker is missing from the -X importtime report")
    total_us = 0
    modules = 0
    self_us: dict[str, int] = defaultdict(int)
    cumulative: list[tuple[float, str]] = []
    for line in lines[lines.index(MARKER) + 1 :]:
        if not line.startswith("import time:"):
            continue
        own, total, name = (part for part in line[len("import time:") :].split("|", 2))
        if not own.strip().isdigit():
            continue  # the column headers
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        module = name.strip()
        modules += 1
        self_us[module.split(".")[0]] += int(own)
        cumulative.append((int(total) / 1000, module))
        if depth == 0:
            total_us += int(total)
    return ImportRun(
        total_ms=total_us / 1000,
        modules=modules,
        self_ms_by_package={package: us / 1000 for package, us in self_us.items()},
        cumulative=sorted(cumulative, reverse=True),
    )


def best_of(handler: Handler, runs: int) -> ImportRun:
    """The fastest of ``runs`` imports (after one that fills the bytecode cache)."""
    import_once(handler)
    return min((import_once(handler) for _ in range(runs)), key=lambda run: run.total_ms)


def aim_ms(handler: Handler) -> float:
    return CLIENT_CONNECT_AIM_MS if handler.name == CLIENT_CONNECT else AIM_MS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="imports per handler; the best is shown")
    parser.add_argument("--only", action="append", default=[], help="handlers whose name contains this")
    parser.add_argument("--detail", type=int, default=0, help="also print the N largest cumulative entries")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")
    if args.detail < 0:
        parser.error("--detail: 0 or more")
    selected = [h for h in handlers() if not args.only or any(part in h.name for part in args.only)]
    if not selected:
        parser.error(f"--only: no handler under functions/ matches {args.only}")

    rows = []
    missed = []
    details = []
    for handler in selected:
        progress(f"importing {handler.name} ({args.runs} runs)")
        run = best_of(handler, args.runs)
        aim = aim_ms(handler)
        meets = run.total_ms < aim
        if not meets:
            missed.append(handler.name)
        top = [f"{package} {ms:.0f}" for package, ms in run.top_packages(3)]
        rows.append(
            [
                handler.name,
                round(run.total_ms),
                round(run.cpu_ms),
                run.modules,
                f"< {aim:.0f}",
                "yes" if meets else "NO",
                *top,
            ]
        )
        if args.detail:
            entries = [f"    {ms:8.1f}  {module}" for ms, module in run.cumulative[: args.detail]]
            details.append(f"  {handler.name}\n" + "\n".join(entries))

    reference_rows = []
    for reference in references():
        progress(f"importing {reference.name} ({args.runs} runs)")
        run = best_of(reference, args.runs)
        top = [f"{package} {ms:.0f}" for package, ms in run.top_packages(3)]
        reference_rows.append([reference.name, round(run.total_ms), round(run.cpu_ms), run.modules, *top])

    print(f"Handler imports: best of {args.runs} fresh processes each, python -X importtime")
    print("(top three: self time summed by top-level package, ms)\n")
    headers = ["handler", "ms", "cpu ms", "modules", "aim", "meets", "top 1", "top 2", "top 3"]
    print(render_table(headers, rows))
    if details:
        print("\nLargest cumulative entries (ms, module):\n" + "\n\n".join(details))
    print("\nThe libraries the handlers are built on, alone and together (the floor under them):\n")
    print(render_table(["libraries", "ms", "cpu ms", "modules", "top 1", "top 2", "top 3"], reference_rows))
    print()
    if missed:
        print(f"Aims missed by {len(missed)} of {len(rows)}: {', '.join(missed)}")
    else:
        print(
            f"Aims met: every handler under {AIM_MS:.0f} ms, "
            f"the client-connect handler under {CLIENT_CONNECT_AIM_MS:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
