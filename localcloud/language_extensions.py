"""AWS::LanguageExtensions on the local cloud: expands the part of the transform the product uses.

CloudFormation runs the ``AWS::LanguageExtensions`` transform before ``AWS::Serverless-2016-10-31``.
Neither aws-sam-translator nor moto knows it, so the local cloud expands the template first, as
CloudFormation would, and hands the SAM translator a template without it.

Expanded, as the CloudFormation template reference describes ``Fn::ForEach``:

- ``Fn::ForEach::<LoopName>: [Identifier, [values], {OutputKey: OutputValue}]`` in the
  ``Conditions``, ``Resources`` and ``Outputs`` sections, loops nested in a loop's fragment included;
  the generated entries take the loop's place, in the collection's order;
- in the fragment's keys and strings (``Fn::Sub`` texts included), ``${Identifier}`` becomes the
  value and ``&{Identifier}`` the value without its non-alphanumeric characters; ``{"Ref":
  Identifier}`` becomes the value itself;
- ``Ref`` and ``Fn::GetAtt`` whose logical id is an ``Fn::Sub`` naming no variables once the
  identifiers are substituted, e.g. ``{"Ref": {"Fn::Sub": "${Name}Function"}}``, become plain
  references (``{"Ref": "ValidateRequestFunction"}``).

Anything else the transform offers (``Fn::ForEach`` in resource properties, a collection read from a
parameter, ``Fn::Length``, ``Fn::ToJsonString``, ``Fn::FindInMap`` with ``DefaultValue``, an
intrinsic function as ``DeletionPolicy``) raises ``LanguageExtensionsError`` naming the construct: a
local deploy that silently differs from CloudFormation's would hide the difference.

Run as a module, it writes the expanded template as JSON, for tools that cannot read the transform:

    python -m localcloud.language_extensions template.yaml expanded.json
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

from localcloud.sam import SamError, load_template

__all__ = [
    "TRANSFORM",
    "LanguageExtensionsError",
    "expand_language_extensions",
    "load_expanded_template",
    "main",
]

TRANSFORM = "AWS::LanguageExtensions"
_FOREACH_PREFIX = "Fn::ForEach::"
_LOOP_SECTIONS = ("Conditions", "Resources", "Outputs")
# Functions of the transform this module does not expand (Fn::ForEach and Ref/GetAtt aside).
_UNSUPPORTED_FUNCTIONS = ("Fn::Length", "Fn::ToJsonString")
_ALPHANUMERIC = re.compile(r"^[A-Za-z0-9]+$")
_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
_SUB_VARIABLE = re.compile(r"\$\{[^!]")


class LanguageExtensionsError(SamError):
    """The template uses AWS::LanguageExtensions in a way the local cloud does not expand."""


def load_expanded_template(path: Path) -> dict[str, Any]:
    """``path`` read as plain JSON data (``localcloud.sam.load_template``), its transform expanded."""
    return expand_language_extensions(load_template(path))


def expand_language_extensions(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` with ``Fn::ForEach`` expanded and ``AWS::LanguageExtensions`` removed
    from ``Transform``; a template without the transform is returned as an unchanged copy."""
    expanded = copy.deepcopy(template)
    transforms = _transforms(template)
    if TRANSFORM not in transforms:
        loops = [
            f"{section}.{key}"
            for section in _LOOP_SECTIONS
            for key in (template.get(section) or {})
            if isinstance(key, str) and key.startswith(_FOREACH_PREFIX)
        ]
        if loops:
            raise LanguageExtensionsError(
                f"{', '.join(loops)}: Fn::ForEach needs the {TRANSFORM} transform in Transform"
            )
        return expanded
    remaining = [name for name in transforms if name != TRANSFORM]
    if not remaining:
        del expanded["Transform"]
    else:
        expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    for section in _LOOP_SECTIONS:
        entries = expanded.get(section)
        if isinstance(entries, dict):
            expanded[section] = _expand_entries(section, entries, expanded.get("Resources") or {}, [])
    resolved: dict[str, Any] = _resolve_logical_ids(expanded, "")
    _refuse_unsupported(resolved, "")
    for logical_id, resource in (resolved.get("Resources") or {}).items():
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if not isinstance((resource or {}).get(policy, ""), str):
                raise LanguageExtensionsError(
                    f"Resources.{logical_id}.{policy}: an intrinsic function as {policy}"
                    " is not expanded locally"
                )
    return resolved


def _transforms(template: dict[str, Any]) -> list[str]:
    transform = template.get("Transform")
    if transform is None:
        return []
    return [str(name) for name in (transform if isinstance(transform, list) else [transform])]


def _expand_entries(
    section: str, entries: dict[str, Any], resources: dict[str, Any], identifiers: list[str]
) -> dict[str, Any]:
    """``entries`` (a section, or a loop's fragment) with each loop replaced by what it generates."""
    result: dict[str, Any] = {}
    for key, value in entries.items():
        if not key.startswith(_FOREACH_PREFIX):
            _add(result, section, key, value)
            continue
        identifier, collection, fragment = _loop(key, value, resources, identifiers)
        for item in collection:
            generated = _substitute(fragment, identifier, item)
            for generated_key, generated_value in _expand_entries(
                section, generated, resources, [*identifiers, identifier]
            ).items():
                _add(result, section, generated_key, generated_value, loop=key)
    return result


def _add(result: dict[str, Any], section: str, key: str, value: Any, *, loop: str | None = None) -> None:
    where = f"{section}.{loop}" if loop else section
    if loop is not None and not _ALPHANUMERIC.match(key):
        raise LanguageExtensionsError(f"{where} generates {key!r}, which is not an alphanumeric name")
    if key in result:
        raise LanguageExtensionsError(f"{where} generates {key!r}, which the section already has")
    result[key] = value


def _loop(
    key: str, value: Any, resources: dict[str, Any], identifiers: list[str]
) -> tuple[str, list[str], dict[str, Any]]:
    """The identifier, collection and fragment of the loop ``key``, checked as CloudFormation does."""
    name = key[len(_FOREACH_PREFIX) :]
    if not _ALPHANUMERIC.match(name):
        raise LanguageExtensionsError(f"{key}: the loop name must be alphanumeric")
    if name in resources:
        raise LanguageExtensionsError(f"{key}: the loop name is also a resource's logical id")
    if not isinstance(value, list) or len(value) != 3:
        raise LanguageExtensionsError(f"{key}: takes [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, fragment = value
    if not isinstance(identifier, str) or not _ALPHANUMERIC.match(identifier):
        raise LanguageExtensionsError(f"{key}: the identifier must be an alphanumeric string")
    if identifier in identifiers:
        raise LanguageExtensionsError(f"{key}: the identifier {identifier} is already an enclosing loop's")
    if not isinstance(collection, list):
        raise LanguageExtensionsError(
            f"{key}: only a literal list is supported as the collection, not {json.dumps(collection)}"
            " (a parameter's or another function's value is not expanded locally)"
        )
    values: list[str] = []
    for item in collection:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise LanguageExtensionsError(f"{key}: collection items must be strings, not {json.dumps(item)}")
        values.append(str(item))
    if not isinstance(fragment, dict) or not fragment:
        raise LanguageExtensionsError(f"{key}: the fragment must map output keys to values")
    for output_key in fragment:
        if not output_key.startswith(_FOREACH_PREFIX) and not (
            f"${{{identifier}}}" in output_key or f"&{{{identifier}}}" in output_key
        ):
            raise LanguageExtensionsError(
                f"{key}: the output key {output_key!r} must contain ${{{identifier}}} or &{{{identifier}}}"
            )
    return identifier, values, fragment


def _substitute(node: Any, identifier: str, value: str) -> Any:
    """``node`` with ``${identifier}``, ``&{identifier}`` and ``{"Ref": identifier}`` replaced."""
    if isinstance(node, str):
        stripped = _NON_ALPHANUMERIC.sub("", value)
        return node.replace(f"${{{identifier}}}", value).replace(f"&{{{identifier}}}", stripped)
    if isinstance(node, list):
        return [_substitute(item, identifier, value) for item in node]
    if isinstance(node, dict):
        if node == {"Ref": identifier}:
            return value
        return {
            _substitute(key, identifier, value): _substitute(item, identifier, value)
            for key, item in node.items()
        }
    return node


def _resolve_logical_ids(node: Any, path: str) -> Any:
    """``node`` with each ``Ref`` / ``Fn::GetAtt`` of an ``Fn::Sub`` turned into a plain reference."""
    if isinstance(node, list):
        return [_resolve_logical_ids(item, f"{path}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, dict):
            return {"Ref": _logical_id(value, path)}
        if key == "Fn::GetAtt" and isinstance(value, list) and len(value) == 2:
            name, attribute = value
            if isinstance(name, dict):
                name = _logical_id(name, path)
            if not isinstance(attribute, str):
                raise LanguageExtensionsError(
                    f"{path}: Fn::GetAtt's attribute name {json.dumps(attribute)} is not expanded locally"
                )
            return {"Fn::GetAtt": [name, attribute]}
    return {key: _resolve_logical_ids(value, f"{path}.{key}" if path else key) for key, value in node.items()}


def _logical_id(function: dict[str, Any], path: str) -> str:
    text = function.get("Fn::Sub") if len(function) == 1 else None
    if not isinstance(text, str) or _SUB_VARIABLE.search(text):
        raise LanguageExtensionsError(
            f"{path}: a logical id written as {json.dumps(function)} is not expanded locally; only an"
            " Fn::Sub of the loop identifiers is"
        )
    return text


def _refuse_unsupported(node: Any, path: str) -> None:
    """Raise on what the transform would expand but this module leaves as it is."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _refuse_unsupported(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and key.startswith(_FOREACH_PREFIX):
            raise LanguageExtensionsError(
                f"{where}: Fn::ForEach is expanded locally only at the top of Conditions, Resources"
                " and Outputs"
            )
        if key in _UNSUPPORTED_FUNCTIONS:
            raise LanguageExtensionsError(f"{where}: {key} is not expanded locally")
        if key == "Fn::FindInMap" and isinstance(value, list) and len(value) == 4:
            raise LanguageExtensionsError(
                f"{where}: Fn::FindInMap with a DefaultValue is not expanded locally"
            )
        _refuse_unsupported(value, where)


def main(argv: list[str]) -> int:
    """``python -m localcloud.language_extensions TEMPLATE OUTPUT``: write TEMPLATE expanded, as JSON."""
    if len(argv) != 2:
        print("usage: python -m localcloud.language_extensions TEMPLATE OUTPUT", file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    try:
        expanded = load_expanded_template(source)
    except SamError as error:
        print(f"{source}: {error}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(expanded, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
