"""Who a validated OpenID Connect token names: a person is their issuer and ``sub``, nothing else.

An e-mail claim can be unverified, or change hands when an address is reused; ``sub`` is the issuer's
stable, never reassigned id of the person. So requests and approvals are matched on issuer + ``sub``;
the name and e-mail only label them for people to read. A request recorded without a ``sub`` (one a
ticket started, which names its requester by e-mail or user name) matches only an e-mail the issuer
vouches for (``email_verified``).

Claims come either as the token's JSON values or as API Gateway hands them to a function behind a JWT
authorizer: every value a string, an array written ``[a b c]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "VPN_USER_CLAIMS",
    "Person",
    "PersonUnknown",
    "claim_values",
    "person_from_claims",
    "vpn_user_from_claims",
]

# Where a token says the user name the VPN sees (Active Directory sAMAccountName or UPN, SAML NameID),
# in order of preference, when the profile names no claim of its own.
VPN_USER_CLAIMS = ("preferred_username", "username", "cognito:username")
_NAME_CLAIMS = ("name", "preferred_username", "email", "username", "cognito:username")
_SEPARATORS = re.compile(r"[\s,]+")


class PersonUnknown(Exception):
    """The token has no issuer or no ``sub``: it names nobody this product can tell apart."""


@dataclass(frozen=True)
class Person:
    """A signed-in person: the stable identity (issuer, sub) and what to call them."""

    issuer: str
    subject: str
    name: str
    email: str = ""
    email_verified: bool = False

    def same_as(self, issuer: Any, subject: Any) -> bool:
        return bool(subject) and self.issuer == str(issuer or "") and self.subject == str(subject)

    def as_record(self, prefix: str) -> dict[str, str]:
        """The identity as flat fields (``<prefix>_issuer`` ...) for a stored record."""
        return {
            f"{prefix}_issuer": self.issuer,
            f"{prefix}_sub": self.subject,
            f"{prefix}_name": self.name,
            f"{prefix}_email": self.email,
        }

    def label(self) -> str:
        """How people read who this is: the name, and the e-mail when it adds something."""
        if self.email and self.email != self.name:
            return f"{self.name} <{self.email}>"
        return self.name


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


def person_from_claims(claims: Mapping[str, Any]) -> Person:
    """The person a validated token was issued to; PersonUnknown when ``iss`` or ``sub`` is missing."""
    issuer, subject = _text(claims, "iss"), _text(claims, "sub")
    if not issuer or not subject:
        missing = "iss" if not issuer else "sub"
        raise PersonUnknown(f"the token names no person: its {missing} claim is missing")
    name = next((_text(claims, claim) for claim in _NAME_CLAIMS if _text(claims, claim)), subject)
    verified = claims.get("email_verified")
    return Person(
        issuer=issuer,
        subject=subject,
        name=name,
        email=_text(claims, "email"),
        email_verified=verified is True or (isinstance(verified, str) and verified.lower() == "true"),
    )


def claim_values(claims: Mapping[str, Any], name: str) -> list[str] | None:
    """The values of a multi-valued claim (``groups``), None when the token does not carry it.

    A JSON array gives its items; API Gateway's ``[a b]`` string its space-separated words; any other
    string its words separated by spaces or commas (how some issuers write a list in one string).
    """
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [word for word in _SEPARATORS.split(text) if word]


def vpn_user_from_claims(claims: Mapping[str, Any], claim: str | None = None) -> str:
    """The VPN user name a person's grant is for: the profile's ``claim``, else the first of
    VPN_USER_CLAIMS the token carries; PersonUnknown naming the claim when there is none."""
    names = (claim,) if claim else VPN_USER_CLAIMS
    for name in names:
        value = _text(claims, name)
        if value:
            return value
    raise PersonUnknown(
        f"{names[0] if claim else 'preferred_username'}: the sign-in token carries no VPN user name "
        f"(looked for the claim{'s' if len(names) > 1 else ''} {', '.join(names)})"
    )
