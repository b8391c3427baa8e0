"""`cvpn ca` and `cvpn cert`: the client CA of mutual-TLS profiles and the personal certificates.

cvpn ca create --crl-bucket B [--name N] [--mode general-purpose|short-lived] [--crl-days N]
                                                   a root AWS Private CA for client certificates, its
                                                   certificate installed, a server certificate it
                                                   signed imported into ACM (the endpoint's server
                                                   certificate and client root chain), CRLs to B
cvpn cert list [--endpoint E] [--json]             issued, expiring, expired and revoked certificates
cvpn cert revoke SERIAL [--reason R]               revoke in Private CA, import the endpoint's CRL,
                                                   cut the person's sessions

All work against a deployed stack (its CloudFormation outputs) on AWS, the local cloud (``--local``)
or any AWS-compatible endpoint (``--endpoint-url``).
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from cvpn.common import CliError, add_aws_options, aws_client

if TYPE_CHECKING:
    from cvpn_shared.access.certificates.lifecycle import ClientCertificates

__all__ = ["register"]

_OUTPUTS = {
    "AccessGrantsTableName": "access_grants_table_name",
    "ProfilesParameterPath": "profiles_parameter_path",
    "ClientConfigBucketName": "config_bucket_name",
}
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
_MODES = {"general-purpose": "GENERAL_PURPOSE", "short-lived": "SHORT_LIVED_CERTIFICATE"}
_REASONS = (
    "UNSPECIFIED",
    "KEY_COMPROMISE",
    "CERTIFICATE_AUTHORITY_COMPROMISE",
    "AFFILIATION_CHANGED",
    "SUPERSEDED",
    "CESSATION_OF_OPERATION",
    "PRIVILEGE_WITHDRAWN",
    "A_A_COMPROMISE",
)


def _settings(args: argparse.Namespace) -> SimpleNamespace:
    from cvpn.provision import StackNotFound, stack_outputs

    try:
        outputs = stack_outputs(aws_client(args, "cloudformation"), args.stack_name)
    except StackNotFound as error:
        raise CliError(f"--stack-name {args.stack_name}: {error}") from error
    missing = sorted(set(_OUTPUTS) - set(outputs))
    if missing:
        raise CliError(
            f"--stack-name {args.stack_name}: no output {', '.join(missing)} (deploy this version first)"
        )
    return SimpleNamespace(**{field: outputs[key] for key, field in _OUTPUTS.items()})


def _certificates(args: argparse.Namespace) -> ClientCertificates:
    from cvpn.access_cli import _clock
    from cvpn_shared.access.wiring import build_client_certificates

    return build_client_certificates(lambda service: aws_client(args, service), _settings(args), _clock(args))


# -------------------------------------------------------------------------------------------- ca
def create_client_ca(
    pca: Any,
    acm: Any,
    *,
    name: str,
    crl_bucket: str,
    mode: str,
    crl_days: int,
    years: int,
    server_name: str = "server.cvpn.internal",
) -> dict[str, str]:
    """A root Private CA, active, whose CRLs go to ``crl_bucket``; its certificate in ACM."""
    arn = str(
        pca.create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "RSA_2048",
                "SigningAlgorithm": "SHA256WITHRSA",
                "Subject": {"CommonName": name},
            },
            RevocationConfiguration={
                "CrlConfiguration": {
                    "Enabled": True,
                    "ExpirationInDays": crl_days,
                    "S3BucketName": crl_bucket,
                    "S3ObjectAcl": "BUCKET_OWNER_FULL_CONTROL",
                }
            },
            CertificateAuthorityType="ROOT",
            UsageMode=_MODES[mode],
            Tags=[{"Key": "cvpn:purpose", "Value": "client-certificates"}],
        )["CertificateAuthorityArn"]
    )
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    root_arn = pca.issue_certificate(
        CertificateAuthorityArn=arn,
        Csr=csr.encode(),
        SigningAlgorithm="SHA256WITHRSA",
        TemplateArn=ROOT_TEMPLATE,
        Validity={"Type": "YEARS", "Value": years},
    )["CertificateArn"]
    waiter_error: Exception | None = None
    for _ in range(40):
        try:
            root = pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=root_arn)["Certificate"]
            break
        except Exception as error:  # RequestInProgressException for a moment after issuing
            waiter_error = error
            import time

            time.sleep(0.5)
    else:
        raise CliError(f"the CA certificate of {arn} was not issued: {waiter_error}")
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=root.encode())
    acm_arn = _server_certificate(pca, acm, arn, root, server_name=server_name, mode=mode, years=years)
    return {
        "certificate_authority_arn": arn,
        "server_certificate_arn": acm_arn,
        "client_root_certificate_chain_arn": acm_arn,
    }


def _server_certificate(
    pca: Any, acm: Any, ca_arn: str, root: str, *, server_name: str, mode: str, years: int
) -> str:
    """A server certificate from the CA, imported into ACM with the CA as its chain: Client VPN takes
    it as the endpoint's server certificate and, since the same CA signs the clients, as their root
    chain (ACM imports no certificate without its key, which the CA's own never leaves Private CA)."""
    import time

    from cvpn_shared.access.certificates.lifecycle import new_key_pair

    keys = new_key_pair(server_name)
    days = 7 if mode == "short-lived" else 365 * years - 1
    issued = pca.issue_certificate(
        CertificateAuthorityArn=ca_arn,
        Csr=keys.csr_pem.encode(),
        SigningAlgorithm="SHA256WITHRSA",
        TemplateArn="arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1",
        Validity={"Type": "DAYS", "Value": days},
    )["CertificateArn"]
    for _ in range(40):
        try:
            body = pca.get_certificate(CertificateAuthorityArn=ca_arn, CertificateArn=issued)["Certificate"]
            break
        except Exception:  # RequestInProgressException for a moment after issuing
            time.sleep(0.5)
    else:
        raise CliError(f"the server certificate of {ca_arn} was not issued")
    return str(
        acm.import_certificate(
            Certificate=body.encode(),
            PrivateKey=keys.private_key_pem.encode(),
            CertificateChain=root.encode(),
        )["CertificateArn"]
    )


def cmd_ca_create(args: argparse.Namespace) -> int:
    if not 1 <= args.crl_days <= 5000:
        raise CliError("--crl-days: must be 1 to 5000 (days a revocation list is valid)")
    if not 1 <= args.years <= 30:
        raise CliError("--years: must be 1 to 30")
    created = create_client_ca(
        aws_client(args, "acm-pca"),
        aws_client(args, "acm"),
        name=args.name,
        crl_bucket=args.crl_bucket,
        mode=args.mode,
        crl_days=args.crl_days,
        years=args.years,
        server_name=args.server_name,
    )
    if args.json:
        print(json.dumps(created, indent=2, sort_keys=True))
        return 0
    price = "$400" if args.mode == "general-purpose" else "$50"
    print(
        f"{created['certificate_authority_arn']}: {args.mode} client CA "
        f"(about {price} a month while it exists)\n"
        f"  put in the profile: client_certificate_authority_arn = {created['certificate_authority_arn']}\n"
        f"  server_certificate_arn = {created['server_certificate_arn']}\n"
        "  and the mutual-tls method's client_root_certificate_chain_arn = "
        f"{created['client_root_certificate_chain_arn']}"
    )
    return 0


# ------------------------------------------------------------------------------------------ cert
def cmd_cert_list(args: argparse.Namespace) -> int:
    rows = [
        {**record.model_dump(mode="json"), "status": status}
        for record, status in _certificates(args).listing(endpoint_id=args.endpoint)
    ]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no client certificates" + (f" on {args.endpoint}" if args.endpoint else ""))
        return 0
    for row in rows:
        print(
            f"{row['serial']}  {row['status']:<8}  {row['vpn_user']}  {row['endpoint_id']}  "
            f"grant {row['grant_id']}  until {row['not_after']}"
        )
    return 0


def cmd_cert_revoke(args: argparse.Namespace) -> int:
    from cvpn_shared.access.certificates.lifecycle import CertificateNotFound

    try:
        outcome = _certificates(args).revoke(args.serial, reason=args.reason)
    except (CertificateNotFound, ValueError) as error:
        raise CliError(f"SERIAL: {error}") from None
    crl = (
        "the endpoint's revocation list now holds it"
        if outcome.revocation_list_imported
        else "the CA has not published it yet: the scheduled refresh imports it"
    )
    print(
        f"{outcome.record.serial} ({outcome.record.vpn_user} on {outcome.record.endpoint_id}) "
        f"revoked; {crl}; "
        f"{outcome.sessions_terminated} session(s) cut"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add `cvpn ca create` and `cvpn cert list|revoke`."""
    ca = subparsers.add_parser("ca", help="the AWS Private CA of mutual-TLS profiles")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    create = ca_commands.add_parser(
        "create", help="create a root client CA in AWS Private CA (billed monthly)"
    )
    create.add_argument("--name", default="cvpn client CA", help="the CA's common name")
    create.add_argument("--crl-bucket", required=True, help="S3 bucket Private CA writes revocation lists to")
    create.add_argument("--mode", choices=sorted(_MODES), default="general-purpose")
    create.add_argument("--crl-days", type=int, default=7, help="days each revocation list is valid")
    create.add_argument("--years", type=int, default=10, help="years the CA certificate is valid")
    create.add_argument("--server-name", default="server.cvpn.internal", help="the server certificate's name")
    create.add_argument("--json", action="store_true")
    add_aws_options(create)
    create.set_defaults(func=cmd_ca_create)

    cert = subparsers.add_parser("cert", help="personal client certificates of mutual-TLS grants")
    cert_commands = cert.add_subparsers(dest="cert_command", required=True)
    listing = cert_commands.add_parser("list", help="issued, expiring, expired and revoked certificates")
    listing.add_argument("--endpoint", help="only certificates for this endpoint id")
    listing.add_argument("--json", action="store_true")
    add_aws_options(listing)
    listing.set_defaults(func=cmd_cert_list)

    revoke = cert_commands.add_parser("revoke", help="revoke a certificate by serial (hex)")
    revoke.add_argument("serial", metavar="SERIAL")
    revoke.add_argument("--reason", choices=_REASONS, default="PRIVILEGE_WITHDRAWN")
    add_aws_options(revoke)
    revoke.set_defaults(func=cmd_cert_revoke)
