"""Mutual TLS end to end on the local cloud: a client CA made by `cvpn ca create`, a shared endpoint
with certificate + Active Directory authentication, personal certificates for grants.

A person granted access downloads a personal profile (GET /grants/<id>/configuration signed in, as
the person's page does: the request API's function issues the certificate) whose certificate chains
to the CA and whose key matches; the simulated client connects with it; revoking
the grant revokes the certificate, imports the CA's list into the endpoint and cuts the session, and
the same certificate is refused. The scheduled refresh renews an expired list. No private key is left
in any log group, table, state machine history or SNS/SQS message of the local cloud.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.access.e2e.conftest import STACK_NAME, Intake
from tests.fixtures.polling import wait_until
from tests.fixtures.shared_endpoints import Authentication, shared_endpoint

PROFILE = "mtls-eng"
REQUEST_ID = "NET-MTLS1"
CRL_BUCKET = "cvpn-client-ca-crls"
CRL_DAYS = 2
KEYS_HANDED_OUT: list[str] = []  # PEM bodies of every private key a test downloaded


@dataclass
class Mtls:
    intake: Intake
    endpoint_id: str
    ca_arn: str

    def run(self, *arguments: str) -> tuple[int, str, str]:
        return self.intake.cvpn(*arguments)

    @property
    def issuer(self) -> str:
        assert self.intake.cloud.oidc is not None
        return str(self.intake.cloud.oidc.issuer_url)

    @property
    def clock(self) -> Any:
        return self.intake.cloud.clock

    def certificates(self) -> Any:
        from cvpn_shared.access.wiring import build_client_certificates

        outputs = self.intake.stack.outputs
        settings = SimpleNamespace(
            access_grants_table_name=outputs["AccessGrantsTableName"],
            profiles_parameter_path=outputs["ProfilesParameterPath"],
            config_bucket_name=outputs["ClientConfigBucketName"],
        )
        from botocore.config import Config

        def make_client(service: str) -> Any:
            # as the functions' clients: S3 refuses SigV2 links to objects encrypted with KMS
            if service == "s3":
                return self.intake.cloud.client(service, config=Config(signature_version="s3v4"))
            return self.intake.cloud.client(service)

        return build_client_certificates(make_client, settings, self.clock.now)

    def break_glass(self, user: str, hours: str = "100") -> dict[str, Any]:
        """A break-glass grant for ``user`` signed in at the local cloud's issuer (plain http, which
        `cvpn access grant --issuer` refuses: given through the same layer call the command makes)."""
        from cvpn_shared.access.grants.models import Actor, GrantAsk, Person
        from cvpn_shared.access.wiring import build_access_grants

        outputs = self.intake.stack.outputs
        settings = SimpleNamespace(
            access_grants_table_name=outputs["AccessGrantsTableName"],
            grant_schedule_group=outputs["GrantScheduleGroupName"],
            expire_grant_function_arn=outputs["ExpireGrantFunctionArn"],
            grant_scheduler_role_arn=outputs["GrantSchedulerRoleArn"],
            profiles_parameter_path=outputs["ProfilesParameterPath"],
            requests_table_name=outputs["RequestsTableName"],
            config_bucket_name=outputs["ClientConfigBucketName"],
        )
        grants = build_access_grants(self.intake.cloud.client, settings, self.clock.now)
        ask = GrantAsk(
            person=Person(issuer=self.issuer, sub=f"00u-{user}", vpn_user=user),
            profile=PROFILE,
            hours=float(hours),
            reason=f"incident for {user}",
        )
        grant = grants.grant_break_glass(
            ask, by=Actor(kind="aws", id="arn:aws:iam::123456789012:user/admin", name="admin")
        )
        return dict(grant.model_dump(mode="json"))

    def download(self, grant: dict[str, Any]) -> tuple[str, str]:
        """What the person's page does: GET /grants/<id>/configuration signed in as the grant's owner,
        then the link it answers. Returns (certificate PEM, private key PEM) of the profile."""
        assert self.intake.cloud.oidc is not None
        user = grant["person"]["vpn_user"]
        token = self.intake.cloud.oidc.mint_token(f"00u-{user}", f"{user}@example.com", email_verified=True)
        code, link = self.intake.api("GET", f"/grants/{grant['grant_id']}/configuration", token)
        assert code == 200, link
        assert link["filename"] == f"{PROFILE}-{user}.ovpn"
        with urllib.request.urlopen(link["url"], timeout=30) as response:
            text = response.read().decode()
        certificate = re.search(r"<cert>\n(.+?)\n</cert>", text, re.S)
        key = re.search(r"<key>\n(.+?)\n</key>", text, re.S)
        assert certificate and key, text
        assert "remote " in text and "<ca>" in text  # the endpoint's own configuration around them
        KEYS_HANDED_OUT.append(_body(key.group(1)))
        return certificate.group(1), key.group(1)

    def connect(self, user: str, certificate: str) -> Any:
        return self.intake.attempt(
            self.endpoint_id, user, device_ip="198.51.100.9", client_certificate=certificate
        )

    def status(self, connection_id: str) -> str:
        return self.intake.session(self.endpoint_id, connection_id)

    def imported_crl(self) -> x509.CertificateRevocationList:
        answer = self.intake.cloud.client("ec2").export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=self.endpoint_id
        )
        return x509.load_pem_x509_crl(answer["CertificateRevocationList"].encode())

    def ca_certificate(self) -> x509.Certificate:
        pem = self.intake.cloud.client("acm-pca").get_certificate_authority_certificate(
            CertificateAuthorityArn=self.ca_arn
        )["Certificate"]
        return x509.load_pem_x509_certificate(pem.encode())


def _body(pem: str) -> str:
    return "".join(line.strip() for line in pem.splitlines() if line and not line.startswith("-----"))


@pytest.fixture(scope="module")
def mtls(intake: Intake) -> Iterator[Mtls]:
    with intake.at_real_speed():
        intake.cloud.client("s3").create_bucket(Bucket=CRL_BUCKET)
        code, out, err = intake.cvpn(
            "ca", "create", "--crl-bucket", CRL_BUCKET, "--crl-days", str(CRL_DAYS), "--json"
        )
        assert code == 0, err
        created = json.loads(out)
        endpoint_id = shared_endpoint(
            intake,
            profile=PROFILE,
            request_id=REQUEST_ID,
            cidr="10.254.0.0/22",
            authentication=Authentication(
                intake.network.directory_id, created["client_root_certificate_chain_arn"]
            ),
            server_certificate_arn=created["server_certificate_arn"],
            client_certificate_authority_arn=created["certificate_authority_arn"],
            max_grant_hours=168,
        )
        intake.cloud.clock.advance(300)  # the subnet association completes: clients can connect
        yield Mtls(intake, endpoint_id, created["certificate_authority_arn"])


def test_a_granted_person_connects_with_a_personal_certificate_until_the_grant_is_revoked(mtls: Mtls) -> None:
    """Given a break-glass grant of 100 hours, the person's profile holds a certificate the CA signed
    for their user name until the grant's end + 1 h, with the matching key; the client connects with
    it. Revoking the grant revokes it: the endpoint's list holds its serial, the session is gone and
    the same certificate is refused."""
    grant = mtls.break_glass("alice")
    certificate_pem, key_pem = mtls.download(grant)
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    certificate.verify_directly_issued_by(mtls.ca_certificate())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert key.public_key() == certificate.public_key()
    assert certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice"
    ends_at = datetime.fromisoformat(grant["ends_at"])
    assert certificate.not_valid_after_utc == (ends_at + timedelta(hours=1)).replace(microsecond=0)

    connected = mtls.connect("alice", certificate_pem)
    assert connected.connected, connected.detail
    assert connected.record is not None and connected.record["common-name"] == "alice"

    code, out, err = mtls.run("access", "revoke", grant["grant_id"], "--reason", "left the project")
    assert code == 0, err
    serial = certificate.serial_number
    assert mtls.imported_crl().get_revoked_certificate_by_serial_number(serial) is not None
    assert mtls.status(str(connected.connection_id)) == "terminated"
    refused = mtls.connect("alice", certificate_pem)
    assert not refused.connected and refused.counted_as_authentication_failure
    assert "revoked" in refused.detail

    code, out, err = mtls.run("cert", "list", "--endpoint", mtls.endpoint_id, "--json")
    assert code == 0, err
    [row] = [row for row in json.loads(out) if row["serial"] == format(serial, "x")]
    assert (row["status"], row["grant_id"], row["vpn_user"]) == ("revoked", grant["grant_id"], "alice")


def test_an_approved_request_has_its_certificate_issued_when_the_grant_becomes_active(mtls: Mtls) -> None:
    """Given a person who asks on the form and an approver who confirms, the grant's certificate is
    issued at activation (listed before any download), and the first download hands out that very
    certificate."""
    from cvpn_shared.access.grants.dal import DynamoDbGrants

    intake = mtls.intake
    assert intake.cloud.oidc is not None
    token = intake.cloud.oidc.mint_token(
        "00u-carol", "carol@example.com", email_verified=True, username="carol"
    )
    code, asked = intake.ask(
        token, PROFILE, ["S-1-5-21-1004336348-1177238915-682003330-512"], "release night", hours=8
    )
    assert code == 202, asked
    code, decided = intake.confirm(
        intake.approval_links(asked["request_id"])["approve"], intake.approver_token("grace")
    )
    assert code == 200, decided

    grants = DynamoDbGrants(intake.cloud.client("dynamodb"), intake.stack.outputs["AccessGrantsTableName"])
    wait_until("the grant to be active", lambda: grants.get(asked["grant_id"]).state == "active")  # type: ignore[union-attr]
    certificates = mtls.certificates()
    wait_until("the certificate issued at activation", lambda: bool(certificates.of_grant(asked["grant_id"])))
    [record] = certificates.of_grant(asked["grant_id"])
    assert (record.vpn_user, record.state) == ("carol", "issued")
    code, out, err = mtls.run("cert", "list", "--endpoint", mtls.endpoint_id, "--json")
    assert code == 0, err
    assert record.serial in {row["serial"] for row in json.loads(out)}

    grant = grants.get(asked["grant_id"])
    assert grant is not None
    certificate_pem, _ = mtls.download(grant.model_dump(mode="json"))
    assert (
        format(x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number, "x") == record.serial
    )
    assert certificates.of_grant(asked["grant_id"]) == [record]  # nothing new issued on download
    assert mtls.connect("carol", certificate_pem).connected


def test_a_lost_download_means_a_new_certificate_and_the_old_one_revoked(mtls: Mtls) -> None:
    grant = mtls.break_glass("bob")
    first, _ = mtls.download(grant)
    certificates = mtls.certificates()
    [record] = certificates.of_grant(grant["grant_id"])
    mtls.intake.cloud.client("s3").delete_object(  # the profile's object expired (its lifecycle rule)
        Bucket=mtls.intake.stack.outputs["ClientConfigBucketName"],
        Key=f"personal-configurations/{grant['grant_id']}/{record.serial}.ovpn",
    )
    second, _ = mtls.download(grant)
    assert second != first
    assert mtls.connect("bob", second).connected
    refused = mtls.connect("bob", first)
    assert not refused.connected and "revoked" in refused.detail

    code, out, err = mtls.run(
        "cert", "revoke", format(x509.load_pem_x509_certificate(second.encode()).serial_number, "x")
    )
    assert code == 0, err
    assert "revoked; the endpoint's revocation list now holds it" in out
    code, out, err = mtls.run("cert", "revoke", "zz-not-hex")
    assert code == 2 and "SERIAL" in err


def test_the_schedule_renews_an_expired_revocation_list(mtls: Mtls) -> None:
    """Given an imported list valid CRL_DAYS days, when the emulated clock passes its end and the
    refresh schedule fires, the endpoint holds the CA's renewed list, valid now, still listing the
    revoked (unexpired) certificate."""
    grant = mtls.break_glass("carol", hours="150")
    certificate_pem, _ = mtls.download(grant)
    serial = x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number
    code, _, err = mtls.run("access", "revoke", grant["grant_id"])
    assert code == 0, err
    before = mtls.imported_crl()
    mtls.clock.advance(CRL_DAYS * 86400 + 3600)
    assert before.next_update_utc < mtls.clock.now()

    scheduler = mtls.intake.cloud.scheduler
    assert scheduler is not None
    [schedule] = [item for item in mtls.intake.stack.schedules if "RefreshRevocationLists" in item.logical_id]
    scheduler.add_stack(mtls.intake.stack)
    try:
        scheduler.fire_now(schedule.name, force=True)
    finally:
        scheduler.remove_stack(STACK_NAME)
    wait_until("the renewed list", lambda: mtls.imported_crl().next_update_utc > mtls.clock.now())
    renewed = mtls.imported_crl()
    assert renewed.get_revoked_certificate_by_serial_number(serial) is not None
    assert renewed.is_signature_valid(mtls.ca_certificate().public_key())  # type: ignore[arg-type]


def test_no_private_key_is_left_in_logs_tables_histories_or_messages(mtls: Mtls) -> None:
    """Every key handed out in this module (and one more here, revoked with its grant) is searched
    for in every log group, table, state machine history, SNS/SQS message and function output."""
    grant = mtls.break_glass("dave", hours="1")
    mtls.download(grant)
    code, _, err = mtls.run("access", "revoke", grant["grant_id"])
    assert code == 0, err
    runtime = mtls.intake.cloud.runtime
    assert runtime is not None
    runtime.wait_for_events(timeout=120)
    assert KEYS_HANDED_OUT
    haystack = _everything(mtls.intake)
    assert len(haystack) > 10_000  # the search read the cloud's logs and tables, not nothing
    for body in KEYS_HANDED_OUT:
        assert body[64:128] not in haystack and body[-64:] not in haystack


def _everything(intake: Intake) -> str:
    """Every log event, table item, execution history event and SNS/SQS message of the local cloud."""
    cloud = intake.cloud
    parts: list[str] = []
    logs = cloud.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            for events in logs.get_paginator("filter_log_events").paginate(
                logGroupName=group["logGroupName"]
            ):
                parts.extend(event["message"] for event in events["events"])
    dynamodb = cloud.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            parts.extend(json.dumps(item) for item in page["Items"])
    states = cloud.client("stepfunctions")
    for machine in states.list_state_machines()["stateMachines"]:
        for execution in states.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            history = states.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
            parts.extend(json.dumps(event, default=str) for event in history["events"])
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    account = intake.stack.account_id
    for topic in sns_backends[account][cloud.region].topics.values():
        parts.extend(json.dumps(notification, default=str) for notification in topic.sent_notifications)
    for queue in sqs_backends[account][cloud.region].queues.values():
        parts.extend(message.body for message in queue._messages)
    assert cloud.runtime is not None
    for function in cloud.runtime.stats()["functions"]:
        parts.append(cloud.runtime.logs(function))
    return "\n".join(parts)
