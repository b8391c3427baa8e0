"""What ``sam deploy`` reads besides the template, read the same way for the local cloud: parameter
values in SAM CLI's ``--parameter-overrides`` syntax, and one environment of a SAM CLI configuration
file (``samconfig.toml``).

The syntax is SAM CLI's (``CfnParameterOverridesType`` in ``samcli/cli/types.py``):

- ``Key=Value`` pairs, or ``ParameterKey=Key,ParameterValue=Value`` pairs, separated by spaces; a key
  is letters and digits;
- a value is either unquoted (no space or double quote in it unless escaped with a backslash) or
  wrapped in double or single quotes (then it may hold spaces and the other quote); the wrapping
  quotes are removed and ``\\ ``, ``\\"`` and ``\\'`` unescaped, any other backslash is kept;
- ``file://PATH`` (``.toml``, ``.yaml`` or ``.yml``) reads the pairs of a file: a mapping, a list of
  strings and mappings, nested ``file://`` references, ``$include``; a list value becomes a
  comma-separated one, an empty value an empty string; a relative path is relative to the file that
  names it, else to the working directory;
- of several strings (several words after the flag, a list in ``samconfig.toml``) later ones win.

Where SAM CLI silently skips text it cannot read (``A=1 junk``, ``Key=`` with nothing after it, a
double quote inside an unquoted value, the ``Key=Value`` pairs of a string that also holds
``ParameterKey=`` pairs), this refuses it and names the text: a rehearsal must not quietly deploy
other values than the ones the user wrote.

``samconfig.toml`` (or ``.yaml``/``.yml``) is read as SAM CLI reads it for ``sam deploy``: the
``[<env>.deploy.parameters]`` table over ``[<env>.global.parameters]``, key by key, and a ``version``
number at the top.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SamCliError",
    "SamConfigEnvironment",
    "default_samconfig",
    "parse_parameter_overrides",
    "read_samconfig_environment",
]

_KEY = r"""[A-Za-z0-9"']+"""
# One character (or escape) per repetition: the text is the user's, and a nested ``+`` inside ``*``
# would backtrack exponentially on an unclosed quote.
_VALUE = r"""(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|(?:\\.|[^ "\\])+)"""
_END = r"(?= |\Z)"
_LONG_FORM = re.compile(rf"ParameterKey=({_KEY}),ParameterValue=({_VALUE}){_END}")
_SHORT_FORM = re.compile(rf"({_KEY})=({_VALUE}){_END}")
_QUOTED = {'"': re.compile(r'"(?:\\.|[^"\\])*"'), "'": re.compile(r"'(?:\\.|[^'\\])*'")}
_LONG = "ParameterKey=Key,ParameterValue=Value"
_SHORT = "Key=Value"
_FILE_SUFFIXES = (".toml", ".yaml", ".yml")
SAMCONFIG_NAMES = tuple(f"samconfig{suffix}" for suffix in _FILE_SUFFIXES)


class SamCliError(ValueError):
    """Parameter overrides or a configuration file that cannot be read; the message says where
    and why."""


# ------------------------------------------------------------------------------ parameter overrides
def parse_parameter_overrides(values: Any, *, where: str = "--parameter-overrides") -> dict[str, str]:
    """Parameter values from ``values``: a string, a list of them (nested lists too), a mapping, or
    ``None``, as SAM CLI takes them from its command line and its configuration files.

    ``where`` names the source in errors (a flag, or a file and its key).
    """
    parameters: dict[str, str] = {}
    _collect(values, where=where, current_file=None, seen=[], into=parameters)
    return parameters


def _collect(
    values: Any, *, where: str, current_file: Path | None, seen: list[Path], into: dict[str, str]
) -> None:
    for value in _flatten(values):
        if value is None:
            continue
        if isinstance(value, str):
            if value.startswith("file://"):
                _collect_file(value, where=where, current_file=current_file, seen=seen, into=into)
            else:
                into.update(_pairs_of_text(value, where=where))
        elif isinstance(value, dict):
            _collect_mapping(value, where=where, current_file=current_file, seen=seen, into=into)
        else:
            raise SamCliError(
                f"{where}: {value!r} is neither Key=Value text, a file:// reference nor a mapping"
            )


def _flatten(values: Any) -> Iterator[Any]:
    if isinstance(values, list | tuple):
        for value in values:
            yield from _flatten(value)
    else:
        yield values


def _collect_mapping(
    mapping: dict[Any, Any], *, where: str, current_file: Path | None, seen: list[Path], into: dict[str, str]
) -> None:
    for raw_key, value in mapping.items():
        key = _unquote(str(raw_key))
        if value is None:
            into[key] = ""
        elif raw_key == "$include":
            if not isinstance(value, str | list):
                raise SamCliError(f"{where}: $include must be a string or a list of strings")
            _collect(value, where=where, current_file=current_file, seen=seen, into=into)
        elif isinstance(value, list):
            into[key] = _unquote(",".join(str(item).strip() for item in value if item not in (None, "")))
        elif isinstance(value, dict):
            raise SamCliError(
                f"{where}: {key} is a mapping; a parameter value is text (write JSON as a quoted string)"
            )
        else:
            # As SAM CLI does: a YAML or TOML true becomes "True", which CloudFormation then judges.
            into[key] = _unquote(str(value))


def _collect_file(
    reference: str, *, where: str, current_file: Path | None, seen: list[Path], into: dict[str, str]
) -> None:
    path = Path(reference.removeprefix("file://")).expanduser()
    if not path.is_absolute() and current_file is not None:
        path = current_file.parent / path
    path = path.resolve()
    if not path.is_file():
        raise SamCliError(f"{where}: {reference} was not found or is a directory")
    if path.suffix not in _FILE_SUFFIXES:
        raise SamCliError(f"{where}: {reference} is not a .toml, .yaml or .yml file")
    if path in seen:
        chain = " -> ".join(str(file) for file in [*seen, path])
        raise SamCliError(f"{where}: {reference} includes itself ({chain})")
    seen.append(path)
    try:
        _collect(_read_document(path), where=reference, current_file=path, seen=seen, into=into)
    finally:
        seen.pop()


def _read_document(path: Path) -> Any:
    """The contents of a TOML or YAML file (``None`` for an empty YAML file)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SamCliError(f"{path}: cannot read it: {error.strerror}") from error
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SamCliError(f"{path}: not TOML: {error}") from error
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SamCliError(f"{path}: not YAML: {error}") from error


def _pairs_of_text(text: str, *, where: str) -> dict[str, str]:
    text = text.strip()
    pairs: dict[str, str] = {}
    forms: set[str] = set()
    position = 0
    previous: re.Match[str] | None = None
    while position < len(text):
        match = _LONG_FORM.match(text, position)
        form = _LONG if match else _SHORT
        match = match or _SHORT_FORM.match(text, position)
        if match is None or (form == _SHORT and _unquote(match.group(1)) == "ParameterKey"):
            reason = _why(text[position:])
            words = text[position:].split(" ")
            if previous is not None and previous.group(2)[0] not in "\"'" and "=" not in words[0]:
                # Most often the rest of a value with a space in it, split off where it was not quoted.
                rest = " ".join(itertools.takewhile(lambda word: "=" not in word, words))
                key, value = previous.group(1), f"{previous.group(2)} {rest}"
                reason += f"; if it belongs to the value of {key}, quote that value: {key}='{value}'"
            raise SamCliError(f"{where}: cannot read {_excerpt(text[position:])}: {reason}")
        forms.add(form)
        previous = match
        pairs[_unquote(match.group(1))] = _unquote(match.group(2))
        position = match.end()
        while position < len(text) and text[position] == " ":
            position += 1
    if len(forms) > 1:
        raise SamCliError(
            f"{where}: {_excerpt(text)} mixes {_LONG} and {_SHORT} pairs; sam deploy reads only the "
            "ParameterKey= pairs of such a string and drops the others: write one kind per string"
        )
    return pairs


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _why(rest: str) -> str:
    """Why no pair starts at the beginning of ``rest``."""
    if rest.startswith("ParameterKey="):
        key, separator, value = rest.removeprefix("ParameterKey=").partition(",ParameterValue=")
        if not separator:
            return f"expected {_LONG}"
        assign = "ParameterValue="
    else:
        key, separator, value = rest.partition("=")
        if not separator or " " in key:
            return f"expected {_SHORT} or {_LONG}"
        assign = f"{key}="
    if not key:
        return "no parameter name before '='"
    if not re.fullmatch(_KEY, key):
        return f"{key!r} is not a parameter name (letters and digits only)"
    if not value or value.startswith(" "):
        return f'no value after {assign} (an empty value is written {assign}"")'
    quote = value[0]
    if quote in _QUOTED:
        closed = _QUOTED[quote].match(value)
        if closed is None:
            return f"the {quote} that opens the value of {key} is never closed"
        return f"text follows the closing {quote} of the value of {key}; quote the whole value"
    return (
        f"the value of {key} holds a double quote or ends in a backslash; quote the value "
        f"({key}='...') or escape the quote (\\\")"
    )


def _unquote(value: str) -> str:
    """SAM CLI's ``_unquote_wrapped_quotes``: drop wrapping quotes, unescape space and quotes."""
    if len(value) >= 1 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")


# --------------------------------------------------------------------------------------- samconfig
@dataclass(frozen=True)
class SamConfigEnvironment:
    """What one environment of a SAM CLI configuration file sets for ``sam deploy``."""

    path: Path
    name: str
    stack_name: str | None
    parameter_overrides: dict[str, str] | None  # None: the environment sets none

    @property
    def label(self) -> str:
        return f"{self.path.name} [{self.name}]"


def default_samconfig(directory: Path) -> Path:
    """The configuration file SAM CLI reads by default from ``directory`` (the template's): the
    first of samconfig.toml, samconfig.yaml, samconfig.yml that exists, else samconfig.toml."""
    for name in SAMCONFIG_NAMES:
        if (directory / name).is_file():
            return directory / name
    return directory / SAMCONFIG_NAMES[0]


def read_samconfig_environment(path: Path, environment: str, command: str = "deploy") -> SamConfigEnvironment:
    """Environment ``environment`` of the configuration file ``path``, as ``sam <command>`` reads it.

    Raises ``SamCliError`` when the file is missing or unreadable, has no ``version`` number, or has
    no such environment (naming the ones it has).
    """
    if not path.is_file():
        raise SamCliError(f"{path} does not exist")
    if path.suffix not in _FILE_SUFFIXES:
        raise SamCliError(f"{path} is not a .toml, .yaml or .yml file")
    document = _read_document(path)
    if not isinstance(document, dict):
        raise SamCliError(f"{path}: expected tables of environments, found {type(document).__name__}")
    if not isinstance(document.get("version"), float):
        raise SamCliError(f"{path}: no 'version' number at the top (SAM CLI writes version = 0.1)")
    environments = sorted(name for name, value in document.items() if isinstance(value, dict))
    if environment not in environments:
        have = ", ".join(environments) or "none"
        raise SamCliError(f"{path.name} has no environment {environment!r} (it has: {have})")
    parameters: dict[str, Any] = {}
    for section in ("global", command):
        command_tables = document[environment].get(section) or {}
        table = (command_tables.get("parameters") if isinstance(command_tables, dict) else None) or {}
        if not isinstance(command_tables, dict) or not isinstance(table, dict):
            raise SamCliError(f"{path.name}: [{environment}.{section}.parameters] is not a table")
        parameters.update(table)
    stack_name = parameters.get("stack_name")
    if stack_name is not None and (not isinstance(stack_name, str) or not stack_name):
        raise SamCliError(f"{path.name} [{environment}]: stack_name must be a non-empty string")
    overrides = None
    if "parameter_overrides" in parameters:
        overrides = parse_parameter_overrides(
            parameters["parameter_overrides"], where=f"{path.name} [{environment}] parameter_overrides"
        )
    return SamConfigEnvironment(
        path=path, name=environment, stack_name=stack_name, parameter_overrides=overrides
    )
