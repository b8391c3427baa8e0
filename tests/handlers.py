"""Calling a function's real handler in process: its app module loaded from functions/<area>/<name>/, and a
Lambda context with the fields Powertools reads."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_handler_module(function: str) -> ModuleType:
    """functions/<area>/<name>/app.py as a module, ``function`` being "<area>/<name>" (every
    function's module is called app)."""
    name = function.replace("/", "_")
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / function / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = "req-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
