"""Identity-based policy evaluation as IAM does it for one request context.

A request is allowed when at least one ``Allow`` statement of the principal's policies matches its
action, resource and conditions, and no ``Deny`` statement matches (an explicit deny wins). Matching
follows the IAM policy grammar: ``Action``/``NotAction``, ``Resource``/``NotResource`` with ``*`` and
``?`` wildcards (case-insensitive for actions, case-sensitive for resources), and ``Condition`` blocks
with the string, ARN, boolean, numeric, ``Null`` and ``IpAddress`` operators, their ``IfExists``
forms and the ``ForAllValues:``/``ForAnyValue:`` set qualifiers. Policy variables (``${aws:...}``) are
substituted from the context; an unknown one makes its statement not match, as IAM does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

__all__ = ["Decision", "RequestContext", "evaluate", "statement_actions"]


class Decision(Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit-deny"
    EXPLICIT_DENY = "explicit-deny"


@dataclass(frozen=True)
class RequestContext:
    """One authorization question: may ``action`` be done on ``resource`` with these context keys.

    ``context`` maps condition keys to their values, a list for multivalued keys (``aws:TagKeys``);
    keys are matched case-insensitively as IAM does, the tag key part of ``aws:ResourceTag/<key>``
    and ``aws:RequestTag/<key>`` included.
    """

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def value(self, key: str) -> list[str] | None:
        lowered = key.lower()
        for name, value in self.context.items():
            if name.lower() == lowered:
                return [value] if isinstance(value, str) else list(value)
        return None


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ["^"]
    for char in text:
        parts.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
    parts.append("$")
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class _UnknownVariable(Exception):
    pass


def _substitute(text: str, request: RequestContext) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("*", "?", "$"):
            return name
        values = request.value(name)
        if not values:
            raise _UnknownVariable(name)
        return values[0]

    return _VARIABLE.sub(replace, text) if "${" in text else text


def _matches_any(patterns: Iterable[Any], value: str, *, ignore_case: bool, request: RequestContext) -> bool:
    for pattern in patterns:
        text = _substitute(str(pattern), request)
        if _pattern(text, ignore_case).match(value):
            return True
    return False


def _statement_applies(statement: Mapping[str, Any], request: RequestContext) -> bool:
    if "Action" in statement:
        if not _matches_any(_as_list(statement["Action"]), request.action, ignore_case=True, request=request):
            return False
    elif "NotAction" in statement:
        if _matches_any(_as_list(statement["NotAction"]), request.action, ignore_case=True, request=request):
            return False
    else:
        return False
    if "Resource" in statement:
        if not _matches_any(
            _as_list(statement["Resource"]), request.resource, ignore_case=False, request=request
        ):
            return False
    elif "NotResource" in statement and _matches_any(
        _as_list(statement["NotResource"]), request.resource, ignore_case=False, request=request
    ):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request)


def _conditions_hold(conditions: Mapping[str, Any], request: RequestContext) -> bool:
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            return False
        for key, expected in block.items():
            if not _condition_holds(str(operator), str(key), _as_list(expected), request):
                return False
    return True


def _condition_holds(operator: str, key: str, expected: list[Any], request: RequestContext) -> bool:
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = request.value(key)
    if base == "Null":
        is_null = actual is None or len(actual) == 0
        return any(str(item).lower() == ("true" if is_null else "false") for item in expected)
    negated = base.startswith(("StringNot", "ArnNot", "NumericNotEquals", "NotIpAddress", "DateNotEquals"))
    if actual is None or (qualifier and not actual):
        if qualifier == "ForAllValues":
            return True  # vacuously true over an empty set, as IAM evaluates it
        # A missing key matches nothing: the condition is false, unless it requires no match.
        return if_exists or (negated and not qualifier)
    compare = _COMPARATORS.get(base)
    if compare is None:
        return False  # an operator this evaluator does not know never grants
    expected_text = [_substitute(str(item), request) for item in expected]

    def one(value: str) -> bool:
        hits = any(compare(value, item) for item in expected_text)
        return not hits if negated else hits

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier == "ForAnyValue":
        return any(one(value) for value in actual)
    if negated:
        return all(one(value) for value in actual)
    return any(one(value) for value in actual)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(test: Any) -> Any:
    def compare(value: str, expected: str) -> bool:
        left, right = _number(value), _number(expected)
        return left is not None and right is not None and bool(test(left, right))

    return compare


def _ip(value: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


def _arn_like(value: str, expected: str) -> bool:
    # ARN matching compares the six colon-separated parts, each with wildcards.
    left, right = value.split(":", 5), expected.split(":", 5)
    if len(left) != 6 or len(right) != 6:
        return False
    return all(_pattern(b, False).match(a) for a, b in zip(left, right, strict=True))


_COMPARATORS: dict[str, Any] = {
    "StringEquals": lambda v, e: v == e,
    "StringNotEquals": lambda v, e: v == e,
    "StringEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringNotEqualsIgnoreCase": lambda v, e: v.lower() == e.lower(),
    "StringLike": lambda v, e: bool(_pattern(e, False).match(v)),
    "StringNotLike": lambda v, e: bool(_pattern(e, False).match(v)),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnNotLike": _arn_like,
    "Bool": lambda v, e: v.lower() == e.lower(),
    "NumericEquals": _numeric(lambda a, b: a == b),
    "NumericNotEquals": _numeric(lambda a, b: a == b),
    "NumericLessThan": _numeric(lambda a, b: a < b),
    "NumericLessThanEquals": _numeric(lambda a, b: a <= b),
    "NumericGreaterThan": _numeric(lambda a, b: a > b),
    "NumericGreaterThanEquals": _numeric(lambda a, b: a >= b),
    "IpAddress": _ip,
    "NotIpAddress": _ip,
}


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, Mapping)]


def evaluate(policies: Iterable[Mapping[str, Any]], request: RequestContext) -> Decision:
    """IAM's decision for ``request`` under the identity-based ``policies`` (policy documents)."""
    allowed = False
    for policy in policies:
        for statement in _statements(policy):
            try:
                applies = _statement_applies(statement, request)
            except _UnknownVariable:
                applies = False
            if not applies:
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


def statement_actions(policies: Iterable[Mapping[str, Any]]) -> list[str]:
    """The action patterns the ``Allow`` statements of ``policies`` name (``NotAction`` ones as
    ``NOT <pattern>``), in order, without repeats."""
    seen: dict[str, None] = {}
    for policy in policies:
        for statement in _statements(policy):
            if statement.get("Effect") != "Allow":
                continue
            for action in _as_list(statement.get("Action")):
                seen.setdefault(str(action), None)
            for action in _as_list(statement.get("NotAction")):
                seen.setdefault(f"NOT {action}", None)
    return list(seen)
