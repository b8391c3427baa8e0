"""AWS Client VPN for the local cloud: moto 5.2.5 extended with the Client VPN API.

Call ``install()`` once (it is idempotent) before using moto's ``mock_aws`` or ``ThreadedMotoServer``;
the backend is ``localcloud.clientvpn.models.clientvpn_backends[account][region]``.
"""

from __future__ import annotations

__all__ = ["install"]


def install() -> None:
    """Attach the Client VPN operations to moto's EC2 responses (safe to call many times)."""
    from localcloud.clientvpn.responses import install as install_responses

    install_responses()
