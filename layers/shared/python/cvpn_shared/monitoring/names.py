"""Names as the monitoring keeps them: a user name or common name is whatever a login typed.

``bounded_text`` writes a character that is not printable (controls, line breaks, format characters
such as bidirectional overrides) as its escape (``\\x0a``, ``\\u202e``) and cuts a value longer than
``MAX_FIELD_CHARS`` to its start, ``~`` and a digest of the whole value, so two long names stay two.
The connection-log parser keeps names this way, so every record, finding and block names a person
the same way; the client-connect handler applies it to the name it is given before it looks a block
up, or a block of an odd name would never match the login that typed it.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_FIELD_CHARS", "bounded_text"]

# An entity key holds two fields: at up to 4 bytes a character, this keeps it under DynamoDB's
# 2,048-byte partition key.
MAX_FIELD_CHARS = 240
_DIGEST_CHARS = 16


def bounded_text(value: str) -> str:
    """``value`` with every character that is not printable escaped, cut to ``MAX_FIELD_CHARS`` with
    a digest of the whole value at its end when longer (see the module docstring)."""
    if not value.isprintable():
        value = "".join(char if char.isprintable() else _escaped(char) for char in value)
    if len(value) <= MAX_FIELD_CHARS:
        return value
    digest = hashlib.blake2b(value.encode(errors="surrogatepass"), digest_size=_DIGEST_CHARS // 2).hexdigest()
    return f"{value[: MAX_FIELD_CHARS - _DIGEST_CHARS - 1]}~{digest}"


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
