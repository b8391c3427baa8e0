"""The keys of the grants table that the client-connect handler reads at every login.

The access area writes them (grants, ``cvpn access enforce``); the monitoring area's client-connect
handler reads them in the same BatchGetItem as the blocklist. They live in the kernel so that both
spell them the same way without importing each other.

- ``connect#<endpoint id>#<VPN user name in lower case>``: the connect-time item of a user who holds
  an active grant on the endpoint (``active_until``, POSIX seconds).
- ``endpoint#<endpoint id>``: the endpoint's access policy; when present with ``access = grants``, a
  user without an active grant there is refused at connect. Absent, the endpoint admits whoever its
  own authentication and the blocklist admit (legacy behaviour).
"""

from __future__ import annotations

__all__ = ["ENFORCED_ACCESS", "connect_key", "endpoint_policy_key"]

# The ``access`` value of an endpoint-policy item whose endpoint admits grant holders only.
ENFORCED_ACCESS = "grants"


def connect_key(endpoint_id: str, vpn_user: str) -> str:
    """The connect-time item's key; the user name is lower-cased (directory names are case-insensitive)."""
    return f"connect#{endpoint_id}#{vpn_user.lower()}"


def endpoint_policy_key(endpoint_id: str) -> str:
    """The key of the endpoint's access-policy item."""
    return f"endpoint#{endpoint_id}"
