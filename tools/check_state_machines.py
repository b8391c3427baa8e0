"""statelint on every state machine definition, ignoring only the URI check of ${...} substitutions.

    python tools/check_state_machines.py [statemachines/<area>/*.asl.json ...]

statelint (PyPI `statelint`, a Python port of awslabs' reference Ruby statelint, which has the same
checks and messages) wants a URI in each Task's Resource. Our definitions carry ${Name} there, which
DefinitionSubstitutions replaces with an ARN at deploy time
(tests/provisioning/unit/test_state_machine_wiring.py checks that each one is supplied). Only
those URI problems are dropped: a Resource that is neither a URI nor a substitution, and every
other problem, fails the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from statelint.linter import Linter

ROOT = Path(__file__).resolve().parents[1]
_SUBSTITUTION_NOT_A_URI = re.compile(r' is "\$\{[A-Za-z0-9_]+\}" but should be A URI$')


def problems_of(path: Path) -> list[str]:
    return [p for p in Linter.validate(str(path)) if not _SUBSTITUTION_NOT_A_URI.search(p)]


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "statemachines").rglob("*.asl.json"))
    failed = 0
    for path in paths:
        problems = problems_of(path)
        print(f"{'FAIL' if problems else 'ok  '} {path}")
        for problem in problems:
            print(f"     {problem}")
        failed += bool(problems)
    if not paths:
        print("no state machine definitions found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
