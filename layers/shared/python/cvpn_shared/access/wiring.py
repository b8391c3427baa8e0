"""Builds the access functions' data access from their settings, once per process (warm reuse).

Each builder imports what it builds: a function loads only its own part of access (the webhook
handler loads neither the form, the network profiles nor the approvals).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cvpn_shared.access.settings import get_settings
from cvpn_shared.core.aws_clients import client

if TYPE_CHECKING:
    from cvpn_shared.access.access_requests import AccessRequestServices
    from cvpn_shared.access.approval import RecordedRequests
    from cvpn_shared.access.certificates.lifecycle import ClientCertificates
    from cvpn_shared.access.cidr_pool import CidrPool
    from cvpn_shared.access.dal.approvals import ApprovalRecords, ApproversTopic
    from cvpn_shared.access.dal.executions import StepFunctionsExecutions
    from cvpn_shared.access.dal.form_store import ClientCidrAllocations, FormSubmissions
    from cvpn_shared.access.dal.intake_config import SecretsManagerSecrets
    from cvpn_shared.access.dal.intake_workflow import TaskCallbacks
    from cvpn_shared.access.dal.ticket_poster import UrllibPoster
    from cvpn_shared.access.form import FormServices, StartedExecution
    from cvpn_shared.access.grants.dal import DynamoDbGrants
    from cvpn_shared.access.grants.logic import AccessGrants
    from cvpn_shared.access.grants.personal import PersonalGrants
    from cvpn_shared.access.signatures import SigningSecrets
    from cvpn_shared.access.webhooks import WebhookIntake
    from cvpn_shared.provisioning.dal.configurations import ConfigurationStore

__all__ = [
    "access_grants",
    "access_request_services",
    "approval_context",
    "approval_link_secret",
    "approval_records",
    "approver_words",
    "approvers_topic",
    "build_client_certificates",
    "client_certificates",
    "client_cidr_allocations",
    "client_cidr_pool",
    "configuration_store",
    "form_services",
    "form_submissions",
    "grant_store",
    "intake_secrets",
    "personal_grants",
    "step_functions_executions",
    "task_callbacks",
    "ticket_poster",
    "webhook_intake",
]


@lru_cache(maxsize=1)
def step_functions_executions() -> StepFunctionsExecutions:
    from cvpn_shared.access.dal.executions import StepFunctionsExecutions

    return StepFunctionsExecutions(client("stepfunctions"))


@lru_cache(maxsize=1)
def client_cidr_allocations() -> ClientCidrAllocations:
    from cvpn_shared.access.dal.form_store import ClientCidrAllocations

    return ClientCidrAllocations(client("dynamodb"), get_settings().request_form_table_name)


@lru_cache(maxsize=1)
def form_submissions() -> FormSubmissions:
    from cvpn_shared.access.dal.form_store import FormSubmissions

    return FormSubmissions(client("dynamodb"), get_settings().request_form_table_name)


def client_cidr_pool() -> CidrPool:
    """The configured pool (ValueError naming the setting when it is malformed)."""
    from cvpn_shared.access.cidr_pool import CidrPool

    settings = get_settings()
    return CidrPool.parse(settings.client_cidr_pool, settings.client_cidr_block_prefix_length)


def _start_form_request(request: dict[str, Any]) -> StartedExecution:
    """Start a form request through the intake (approval required) and keep what the form needs."""
    from cvpn_shared.access.form import StartedExecution
    from cvpn_shared.access.start import start_request

    result = start_request(
        step_functions_executions().client,
        get_settings().intake_state_machine_arn,
        source="request-form",
        request=request,
        approval_required=True,
    )
    return StartedExecution(
        request_id=result.request_id,
        execution_arn=result.execution_arn,
        status_url_path=result.status_url_path,
        duplicate=result.duplicate,
    )


@lru_cache(maxsize=1)
def form_services() -> FormServices:
    from cvpn_shared.access.dal.form_store import AccountNetworks, EndedRequests, PersonRequests
    from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles
    from cvpn_shared.access.form import FormServices, PendingLimit
    from cvpn_shared.provisioning.dal.inventory import AwsInventory

    settings = get_settings()
    return FormServices(
        profiles=ParameterStoreProfiles(client("ssm"), get_settings().profiles_parameter_path),
        allocations=client_cidr_allocations(),
        submissions=form_submissions(),
        network=AccountNetworks(AwsInventory(client)),
        start=_start_form_request,
        ended_requests=EndedRequests(client("dynamodb"), settings.requests_table_name),
        pending=PendingLimit(
            store=PersonRequests(client("dynamodb"), settings.request_form_table_name),
            submissions=form_submissions(),
            executions=step_functions_executions(),
            limit=settings.max_pending_requests,
        ),
    )


@lru_cache(maxsize=1)
def configuration_store() -> ConfigurationStore:
    """Where provisioning exported the client configuration: the form hands out links to it."""
    from cvpn_shared.provisioning.dal.configurations import ConfigurationStore

    return ConfigurationStore(client("s3"), get_settings().config_bucket_name)


@lru_cache(maxsize=1)
def intake_secrets() -> SecretsManagerSecrets:
    """Callback credentials or the approval link secret, whichever the function may read (short-lived
    cache); the webhook function builds its own reader of signing secrets (``webhook_intake``)."""
    from cvpn_shared.access.dal.intake_config import SecretsManagerSecrets

    return SecretsManagerSecrets(
        client("secretsmanager"), cache_seconds=get_settings().intake_config_cache_seconds
    )


# A signature mismatch may mean the secret was just rotated: it is read again, at most this often.
SIGNING_SECRET_MIN_REFRESH_SECONDS = 60.0


@lru_cache(maxsize=1)
def webhook_intake() -> WebhookIntake:
    from cvpn_shared.access.dal.callback_invoker import CallbackFunctionNotices
    from cvpn_shared.access.dal.deliveries import WebhookDeliveries
    from cvpn_shared.access.dal.intake_config import SecretsManagerSecrets, SourceCatalog
    from cvpn_shared.access.dal.tickets import StartedTickets
    from cvpn_shared.access.start import IntakeStarter
    from cvpn_shared.access.ticket_grants import TicketGrantStarter
    from cvpn_shared.access.webhooks import WebhookIntake

    settings = get_settings()
    intake = IntakeStarter(client("stepfunctions"), settings.intake_state_machine_arn)
    return WebhookIntake(
        sources=SourceCatalog(
            client("ssm"),
            settings.intake_sources_parameter_path,
            cache_seconds=settings.intake_config_cache_seconds,
        ),
        secrets=SecretsManagerSecrets(
            client("secretsmanager"),
            cache_seconds=settings.intake_config_cache_seconds,
            min_refresh_seconds=SIGNING_SECRET_MIN_REFRESH_SECONDS,
        ),
        deliveries=WebhookDeliveries(client("dynamodb"), settings.webhook_deliveries_table_name),
        starter=intake,
        submissions=form_submissions(),  # where GET /requests/{id} finds the request
        tickets=StartedTickets(client("dynamodb"), settings.intake_tickets_table_name),
        delivery_ttl_days=settings.webhook_delivery_ttl_days,
        max_body_bytes=settings.webhook_max_body_bytes,
        grants=TicketGrantStarter(intake, access_request_services),
        notices=(
            CallbackFunctionNotices(client("lambda"), settings.ticket_callback_function_arn)
            if settings.ticket_callback_function_arn
            else None
        ),
    )


@lru_cache(maxsize=1)
def approval_records() -> ApprovalRecords:
    from cvpn_shared.access.dal.approvals import ApprovalRecords

    return ApprovalRecords(client("dynamodb"), get_settings().approvals_table_name)


@lru_cache(maxsize=1)
def approval_context() -> RecordedRequests:
    """What a decision reads: the recorded request, and the approver group of its profile."""
    from cvpn_shared.access.approval import RecordedRequests
    from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles

    settings = get_settings()
    return RecordedRequests(
        submissions=form_submissions(),
        profiles=ParameterStoreProfiles(client("ssm"), settings.profiles_parameter_path),
        default_claim=settings.approver_group_claim,
        default_group=settings.approver_group or None,
    )


@lru_cache(maxsize=1)
def approvers_topic() -> ApproversTopic:
    from cvpn_shared.access.dal.approvals import ApproversTopic

    return ApproversTopic(client("sns"), get_settings().approvals_topic_arn)


@lru_cache(maxsize=1)
def task_callbacks() -> TaskCallbacks:
    from cvpn_shared.access.dal.intake_workflow import TaskCallbacks

    return TaskCallbacks(client("stepfunctions"))


def approval_link_secret(*, create: bool = False) -> SigningSecrets | None:
    """The approval link secret ({"current", "previous"}), None when missing.

    ``create=True`` (the function that issues links) creates it with a random value on first use.
    """
    from cvpn_shared.access.signatures import SigningSecrets

    name = get_settings().approval_link_secret_name
    if create:
        value: dict[str, Any] | None = intake_secrets().get_or_create_json(
            name, lambda: {"current": secrets.token_urlsafe(48), "previous": ""}
        )
    else:
        value = intake_secrets().get_json(name)
    if not value or not isinstance(value.get("current"), str) or not value["current"]:
        return None
    previous = value.get("previous")
    return SigningSecrets(value["current"], previous if isinstance(previous, str) and previous else None)


@lru_cache(maxsize=1)
def ticket_poster() -> UrllibPoster:
    from cvpn_shared.access.dal.ticket_poster import UrllibPoster

    return UrllibPoster(timeout_seconds=10.0)


def build_access_grants(
    make_client: Any, settings: Any, clock: Any, *, issue_certificates: bool = False
) -> AccessGrants:
    """Grants over the stack's table, schedule group, expiry function and endpoints, through
    ``make_client(service)`` (the functions' clients, or the command line's). ``settings`` has the
    names of ``AccessSettings``' grant fields. Its hooks: with ``grant_comment_function_arn``, a
    ticket's grant gets its reminder and ended comment; with ``config_bucket_name``, grants on a
    mutual-TLS profile have their client certificates revoked when they end, and issued when they
    start if ``issue_certificates`` (a function of the stack: the key pair is made in its memory)."""
    from cvpn_shared.access.certificates.lifecycle import GrantCertificates
    from cvpn_shared.access.dal.grant_follow_up import TicketFollowUp
    from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles
    from cvpn_shared.access.grants.dal import (
        ClientConnectHandlers,
        ClientVpnSessions,
        DynamoDbGrants,
        RequestsTableEndpoints,
        SchedulerExpiry,
    )
    from cvpn_shared.access.grants.logic import AccessGrants, GrantHook

    dynamodb = make_client("dynamodb")
    hooks: list[GrantHook] = []
    comment_function_arn = str(getattr(settings, "grant_comment_function_arn", "") or "")
    if comment_function_arn:  # first: the ticket's comment goes out whatever a later hook does
        hooks.append(
            TicketFollowUp(
                make_client("scheduler"),
                make_client("lambda"),
                group_name=settings.grant_schedule_group,
                comment_function_arn=comment_function_arn,
                role_arn=settings.grant_scheduler_role_arn,
            )
        )
    if getattr(settings, "config_bucket_name", None):
        hooks.append(
            GrantCertificates(
                lambda: build_client_certificates(make_client, settings, clock),
                issue_on_activation=issue_certificates,
            )
        )
    # Activating a grant turns the endpoint's client-connect handler on (it is what refuses others).
    connect_arn = getattr(settings, "client_connect_function_arn", "")
    return AccessGrants(
        store=DynamoDbGrants(dynamodb, settings.access_grants_table_name),
        schedules=SchedulerExpiry(
            make_client("scheduler"),
            group_name=settings.grant_schedule_group,
            target_arn=settings.expire_grant_function_arn,
            role_arn=settings.grant_scheduler_role_arn,
        ),
        sessions=ClientVpnSessions(make_client("ec2")),
        profiles=ParameterStoreProfiles(make_client("ssm"), settings.profiles_parameter_path),
        endpoints=RequestsTableEndpoints(dynamodb, settings.requests_table_name),
        clock=clock,
        connect_handlers=ClientConnectHandlers(make_client("ec2"), connect_arn) if connect_arn else None,
        hooks=hooks,
    )


def build_client_certificates(make_client: Any, settings: Any, clock: Any) -> ClientCertificates:
    """Personal client certificates over Private CA, the grants table, the endpoints and the
    configuration bucket. ``settings`` has ``access_grants_table_name``, ``profiles_parameter_path``
    and ``config_bucket_name``."""
    from cvpn_shared.access.certificates.lifecycle import ClientCertificates
    from cvpn_shared.access.certificates.private_ca import (
        ClientVpnCertificateEndpoints,
        DynamoDbCertificateRecords,
        PrivateCaAuthority,
    )
    from cvpn_shared.access.dal.profile_parameters import ParameterStoreProfiles
    from cvpn_shared.access.grants.dal import ClientVpnSessions
    from cvpn_shared.provisioning.dal.configurations import ConfigurationStore

    s3 = make_client("s3")
    ec2 = make_client("ec2")
    profiles = ParameterStoreProfiles(make_client("ssm"), settings.profiles_parameter_path)

    def ca_of_profile(name: str) -> str | None:
        profile = profiles.get_profile(name)
        return profile.client_certificate_authority_arn if profile is not None else None

    return ClientCertificates(
        authority=PrivateCaAuthority(make_client("acm-pca"), s3),
        records=DynamoDbCertificateRecords(make_client("dynamodb"), settings.access_grants_table_name),
        endpoints=ClientVpnCertificateEndpoints(ec2, ClientVpnSessions(ec2)),
        deliveries=ConfigurationStore(s3, settings.config_bucket_name),
        ca_of_profile=ca_of_profile,
        clock=clock,
    )


@lru_cache(maxsize=1)
def client_certificates() -> ClientCertificates:
    """Certificates as a function of the stack handles them (the key pair is made in its memory)."""
    from datetime import UTC, datetime

    return build_client_certificates(client, get_settings(), lambda: datetime.now(UTC))


@lru_cache(maxsize=2)
def access_grants(*, issue_certificates: bool = False) -> AccessGrants:
    """Grants as a function of the stack does them, on the time of the services that hold them;
    ``issue_certificates``: a grant on a mutual-TLS profile gets its certificate when it becomes
    active (the function that activates grants, which may issue them)."""
    from cvpn_shared.access.grants.dal import ServiceClock

    clock = ServiceClock()
    clock.watch(client("dynamodb"))
    clock.watch(client("ssm"))
    return build_access_grants(client, get_settings(), clock, issue_certificates=issue_certificates)


def _start_access_request(source: str, request: dict[str, Any], callback: dict[str, Any] | None) -> str:
    """Start an access request's intake (approval required); its execution's ARN."""
    from cvpn_shared.access.start import start_request

    return start_request(
        step_functions_executions().client,
        get_settings().intake_state_machine_arn,
        source=source,
        request=request,
        approval_required=True,
        callback=callback,
    ).execution_arn


@lru_cache(maxsize=1)
def access_request_services() -> AccessRequestServices:
    """What starts access requests on grants profiles (the form, tickets, extensions)."""
    from cvpn_shared.access.access_requests import AccessRequestServices

    grants = access_grants()
    settings = get_settings()
    context = approval_context()

    def approver_group(profile: str) -> str:
        return context.approver_rule(profile).group or ""

    return AccessRequestServices(
        grants=grants,
        submissions=form_submissions(),
        start=_start_access_request,
        pending=form_services().pending if settings.request_form_table_name else None,
        approver_group=approver_group,
        clock=grants.now,
    )


@lru_cache(maxsize=1)
def grant_store() -> DynamoDbGrants:
    """The grants table alone (what the comment function reads)."""
    from cvpn_shared.access.grants.dal import DynamoDbGrants

    return DynamoDbGrants(client("dynamodb"), get_settings().access_grants_table_name)


def approver_words(profile: str) -> str:
    """Who approves requests of ``profile``, as the person's page says it ("a member of G")."""
    rule = approval_context().approver_rule(profile)
    if rule.group:
        return f"a member of {rule.group}"
    return f"an approver (none is set yet: an administrator sets {rule.configured_in})"


@lru_cache(maxsize=1)
def personal_grants() -> PersonalGrants:
    """A signed-in person's grants, read-only: the grants table and the configuration bucket."""
    from cvpn_shared.access.grants.dal import DynamoDbGrants, ServiceClock
    from cvpn_shared.access.grants.personal import PersonalGrants
    from cvpn_shared.provisioning.dal.configurations import configuration_key

    settings = get_settings()
    clock = ServiceClock()  # the grants table's time: a countdown ends when the grant does
    clock.watch(client("dynamodb"))
    return PersonalGrants(
        store=DynamoDbGrants(client("dynamodb"), settings.access_grants_table_name),
        configurations=configuration_store(),
        waiting_for=approver_words,
        clock=clock,
        link_ttl_seconds=settings.config_url_ttl_seconds,
        configuration_key=configuration_key,
        personal_configuration=_personal_configuration,
    )


def _personal_configuration(grant: Any, ttl_seconds: int) -> dict[str, str] | None:
    """The grant's personal profile when its profile names a client CA (issued here, in the
    function's memory, on first use); None otherwise."""
    certificates = client_certificates()
    if not certificates.ca_for(grant):
        return None
    return certificates.personal_configuration(grant, ttl_seconds)
