"""The OpenVPN client profile that ExportClientVpnClientConfiguration returns."""

from __future__ import annotations

from localcloud.clientvpn.models import (
    CERTIFICATE_AUTHENTICATION,
    DIRECTORY_AUTHENTICATION,
    FEDERATED_AUTHENTICATION,
    ClientVpnEndpoint,
)


def build_client_configuration(endpoint: ClientVpnEndpoint, certificate_authority_pem: str) -> str:
    """An OpenVPN profile like the one AWS exports for ``endpoint``.

    ``certificate_authority_pem`` is the server certificate's chain (the ``<ca>`` block). Active
    Directory endpoints get ``auth-user-pass``, SAML endpoints ``auth-federate``; with mutual TLS
    the user appends ``<cert>`` and ``<key>`` blocks for their own client certificate.
    """
    lines = [
        "client",
        "dev tun",
        f"proto {endpoint.transport_protocol}",
        f"remote {endpoint.remote_host} {endpoint.vpn_port}",
        "remote-random-hostname",
        "resolv-retry infinite",
        "nobind",
        "remote-cert-tls server",
        "cipher AES-256-GCM",
        "verb 3",
        "<ca>",
        certificate_authority_pem.strip(),
        "</ca>",
        "",
    ]
    kinds = {option["Type"] for option in endpoint.authentication_options}
    if DIRECTORY_AUTHENTICATION in kinds:
        lines += ["auth-user-pass", ""]
    if FEDERATED_AUTHENTICATION in kinds:
        lines += ["auth-federate", ""]
    lines += ["reneg-sec 0", ""]
    if CERTIFICATE_AUTHENTICATION in kinds:
        lines += [
            "# Mutual authentication: add your client certificate and key:",
            "# <cert>",
            "# -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----",
            "# </cert>",
            "# <key>",
            "# -----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----",
            "# </key>",
            "",
        ]
    return "\n".join(lines)
