"""Connections (over the simulator's objects), the exported OpenVPN profile, CRLs, unsupported ops."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localcloud.clientvpn.models import ClientVpnBackend
from localcloud.clientvpn.responses import UNSUPPORTED_OPERATIONS
from tests.localcloud.clientvpn.support import (
    REGION,
    CertificateMaterial,
    FakeConnection,
    Network,
    error_code,
)


@pytest.fixture
def endpoint_with_connections(create_endpoint: Callable[..., str], backend: ClientVpnBackend) -> str:
    endpoint_id = create_endpoint()
    endpoint = backend.get_endpoint(endpoint_id)
    for index, username in enumerate(["alice", "alice", "bob"]):
        connection = FakeConnection(endpoint_id, f"cvpn-connection-{index:017x}", username)
        endpoint.connections[connection.connection_id] = connection
    return endpoint_id


def test_describe_connections_with_filters(ec2: Any, endpoint_with_connections: str) -> None:
    def connection_ids(**kwargs: Any) -> list[str]:
        response = ec2.describe_client_vpn_connections(
            ClientVpnEndpointId=endpoint_with_connections, **kwargs
        )
        return sorted(c["ConnectionId"] for c in response["Connections"])

    assert len(connection_ids()) == 3
    assert connection_ids(Filters=[{"Name": "username", "Values": ["alice"]}]) == [
        f"cvpn-connection-{0:017x}",
        f"cvpn-connection-{1:017x}",
    ]
    assert connection_ids(Filters=[{"Name": "connection-id", "Values": [f"cvpn-connection-{2:017x}"]}]) == [
        f"cvpn-connection-{2:017x}"
    ]
    assert len(connection_ids(MaxResults=5)) == 3


def test_terminate_by_username(ec2: Any, endpoint_with_connections: str, backend: ClientVpnBackend) -> None:
    response = ec2.terminate_client_vpn_connections(
        ClientVpnEndpointId=endpoint_with_connections, Username="alice"
    )
    assert response["ClientVpnEndpointId"] == endpoint_with_connections
    assert response["Username"] == "alice"
    assert [s["CurrentStatus"]["Code"] for s in response["ConnectionStatuses"]] == [
        "terminated",
        "terminated",
    ]
    assert [s["PreviousStatus"]["Code"] for s in response["ConnectionStatuses"]] == ["active", "active"]
    statuses = {
        c.username: c.status for c in backend.get_endpoint(endpoint_with_connections).connections.values()
    }
    assert statuses == {"alice": "terminated", "bob": "active"}


def test_terminate_by_connection_id(ec2: Any, endpoint_with_connections: str) -> None:
    connection_id = f"cvpn-connection-{2:017x}"
    response = ec2.terminate_client_vpn_connections(
        ClientVpnEndpointId=endpoint_with_connections, ConnectionId=connection_id
    )
    assert [s["ConnectionId"] for s in response["ConnectionStatuses"]] == [connection_id]


def test_terminate_errors(ec2: Any, endpoint_with_connections: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        ec2.terminate_client_vpn_connections(
            ClientVpnEndpointId=endpoint_with_connections, Username="mallory"
        )
    assert error_code(excinfo) == "InvalidClientVpnConnection.UserNotFound"
    with pytest.raises(ClientError) as excinfo:
        ec2.terminate_client_vpn_connections(
            ClientVpnEndpointId=endpoint_with_connections, ConnectionId="cvpn-connection-fffffffffffffffff"
        )
    assert error_code(excinfo) == "InvalidClientVpnConnection.IdNotFound"
    with pytest.raises(ClientError) as excinfo:
        ec2.terminate_client_vpn_connections(ClientVpnEndpointId=endpoint_with_connections)
    assert error_code(excinfo) == "MissingParameter"


def test_profile_for_mutual_tls(
    ec2: Any, network: Network, create_endpoint: Callable[..., str], server_certificate: CertificateMaterial
) -> None:
    endpoint_id = create_endpoint(TransportProtocol="tcp", VpnPort=1194)
    profile = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)[
        "ClientConfiguration"
    ]
    lines = profile.splitlines()
    assert lines[:10] == [
        "client",
        "dev tun",
        "proto tcp",
        f"remote {endpoint_id}.prod.clientvpn.{REGION}.amazonaws.com 1194",
        "remote-random-hostname",
        "resolv-retry infinite",
        "nobind",
        "remote-cert-tls server",
        "cipher AES-256-GCM",
        "verb 3",
    ]
    ca_block = profile.split("<ca>\n", 1)[1].split("\n</ca>", 1)[0]
    assert ca_block == server_certificate.certificate_pem.decode().strip()
    assert "reneg-sec 0" in lines
    assert "auth-user-pass" not in lines
    assert "auth-federate" not in lines


def test_profile_for_directory_and_saml(
    ec2: Any, network: Network, create_endpoint: Callable[..., str]
) -> None:
    directory = create_endpoint(
        AuthenticationOptions=[
            {
                "Type": "directory-service-authentication",
                "ActiveDirectory": {"DirectoryId": network.directory_id},
            }
        ]
    )
    saml = create_endpoint(
        AuthenticationOptions=[
            {
                "Type": "federated-authentication",
                "FederatedAuthentication": {"SAMLProviderArn": network.saml_provider_arn},
            }
        ]
    )

    def profile(endpoint_id: str) -> list[str]:
        configuration = ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)
        return list(configuration["ClientConfiguration"].splitlines())

    assert "auth-user-pass" in profile(directory)
    assert "proto udp" in profile(directory)
    assert "auth-federate" in profile(saml)


def _revocation_list(revoked_serials: list[int]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client-ca")]))
        .last_update(now)
        .next_update(now + datetime.timedelta(days=30))
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_revocation_list_round_trip(
    ec2: Any, create_endpoint: Callable[..., str], backend: ClientVpnBackend
) -> None:
    endpoint_id = create_endpoint()
    empty = ec2.export_client_vpn_client_certificate_revocation_list(ClientVpnEndpointId=endpoint_id)
    assert empty["Status"] == {"Code": "pending"}
    crl = _revocation_list([1001, 1002])
    assert ec2.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint_id, CertificateRevocationList=crl
    )["Return"]
    exported = ec2.export_client_vpn_client_certificate_revocation_list(ClientVpnEndpointId=endpoint_id)
    assert exported["CertificateRevocationList"] == crl
    assert exported["Status"] == {"Code": "active"}

    with pytest.raises(ClientError) as excinfo:
        ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList="not a crl"
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    backend.quotas.certificate_revocation_list_entries = 2
    with pytest.raises(ClientError) as excinfo:
        ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList=_revocation_list([1, 2, 3])
        )
    assert error_code(excinfo) == "ClientVpnCertificateRevocationListLimitExceeded"


@pytest.mark.parametrize("operation", UNSUPPORTED_OPERATIONS)
def test_unsupported_operations_answer_clearly(ec2: Any, operation: str) -> None:
    from moto.core.utils import camelcase_to_underscores

    method = getattr(ec2, camelcase_to_underscores(operation))
    arguments = (
        {"TransitGatewayAttachmentId": "tgw-attach-0123456789abcdef0"}
        if "TransitGateway" in operation
        else {"ClientVpnEndpointId": "cvpn-endpoint-0123456789abcdef0"}
    )
    with pytest.raises(ClientError) as excinfo:
        method(**arguments)
    assert error_code(excinfo) == "UnsupportedOperation"
    assert "local cloud does not support" in excinfo.value.response["Error"]["Message"]


def test_every_client_vpn_operation_in_botocore_is_answered() -> None:
    """Each ClientVpn operation in botocore's EC2 model is either emulated or explicitly unsupported."""
    import botocore.session

    from localcloud.clientvpn.responses import RESPONSE_METHODS

    model = botocore.session.get_session().get_service_model("ec2")
    client_vpn_operations = {name for name in model.operation_names if "ClientVpn" in name}
    assert client_vpn_operations == set(RESPONSE_METHODS)
    assert len(set(RESPONSE_METHODS) - set(UNSUPPORTED_OPERATIONS)) == 19
