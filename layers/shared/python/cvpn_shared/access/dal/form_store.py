"""Data access for the request form: held client CIDR blocks, submissions, and the account's networks.

One DynamoDB table (partition key ``pk``) holds two kinds of item:

- ``cidr#<block>``: a client CIDR block held by a request, written only when absent (the race-safe
  part of the allocation) and deleted only by the request that holds it;
- ``request#<request id>``: a form submission (who asked, for what, which execution follows it);
- ``person#<issuer> <sub>``: the requests a person has in flight (for the limit on pending requests),
  with a version that makes each change conditional on the one read.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import conditional_check_failed
from cvpn_shared.provisioning.dal.inventory import AwsInventory

__all__ = [
    "AccountNetworks",
    "ClientCidrAllocations",
    "EndedRequests",
    "FormSubmissions",
    "PersonRequests",
]

_CIDR_PREFIX = "cidr#"
# Outcomes in the requests table after which a request holds no endpoint.
ENDED_STATUSES = frozenset({"FAILED", "ROLLED_BACK", "DECOMMISSIONED"})
_REQUEST_PREFIX = "request#"
_PERSON_PREFIX = "person#"


class ClientCidrAllocations:
    """Held client CIDR blocks, one item per block."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def held_blocks(self) -> dict[ipaddress.IPv4Network, str]:
        blocks: dict[ipaddress.IPv4Network, str] = {}
        paginator = self._dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            ProjectionExpression="pk, request_id",
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": _CIDR_PREFIX}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                block = ipaddress.IPv4Network(item["pk"]["S"].removeprefix(_CIDR_PREFIX))
                blocks[block] = item.get("request_id", {}).get("S", "")
        return blocks

    def claim(self, block: ipaddress.IPv4Network, *, request_id: str, details: dict[str, Any]) -> bool:
        item = {
            "pk": {"S": f"{_CIDR_PREFIX}{block}"},
            "request_id": {"S": request_id},
            **{key: {"S": str(value)} for key, value in details.items()},
        }
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR request_id = :request_id",
                ExpressionAttributeValues={":request_id": {"S": request_id}},
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True

    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"{_CIDR_PREFIX}{block}"}},
                ConditionExpression="request_id = :request_id",
                ExpressionAttributeValues={":request_id": {"S": request_id}},
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True


class FormSubmissions:
    """Form submissions by request id (the document is stored as JSON)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def put(self, submission: dict[str, Any], *, replace: bool = False) -> None:
        """Record a request once; ``replace`` overwrites a record of the same source (a re-opened
        ticket's new run), never another source's or a form's request of the same id."""
        item = {
            "pk": {"S": f"{_REQUEST_PREFIX}{submission['request_id']}"},
            "request_id": {"S": str(submission["request_id"])},
            "requester": {"S": str(submission["requester"])},
            "document": {"S": json.dumps(submission, sort_keys=True, default=str)},
        }
        if submission.get("source"):
            item["source"] = {"S": str(submission["source"])}
        if replace and submission.get("source"):
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #source = :source",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={":source": item["source"]},
            )
            return
        self._dynamodb.put_item(
            TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, request_id: str) -> dict[str, Any] | None:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": f"{_REQUEST_PREFIX}{request_id}"}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        document: dict[str, Any] = json.loads(item["document"]["S"])
        return document


class PersonRequests:
    """The requests each person has in flight, one item per person (issuer + sub)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def read(self, person_key: str) -> tuple[list[dict[str, Any]], int]:
        """The person's listed requests ({request_id, at}) and the version of the list (0: none yet)."""
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": f"{_PERSON_PREFIX}{person_key}"}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return [], 0
        return list(json.loads(item["requests"]["S"])), int(item["version"]["N"])

    def write(self, person_key: str, requests: list[dict[str, Any]], *, version: int) -> bool:
        """Replace the list if it is still at ``version``; False when someone changed it meanwhile."""
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :version"
        values = {} if version == 0 else {":version": {"N": str(version)}}
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"{_PERSON_PREFIX}{person_key}"},
                    "requests": {"S": json.dumps(requests)},
                    "version": {"N": str(version + 1)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as error:
            if conditional_check_failed(error):
                return False
            raise
        return True


class AccountNetworks:
    """The networks a client CIDR must avoid, read from EC2 through the pre-flight inventory."""

    def __init__(self, inventory: AwsInventory) -> None:
        self._inventory = inventory

    def vpc_cidrs(self, vpc_id: str) -> list[str]:
        vpc = self._inventory.vpc(vpc_id)
        return list(vpc.cidr_blocks) if vpc else []

    def client_vpn_endpoints(self) -> list[dict[str, Any]]:
        return self._inventory.client_vpn_endpoints()


class EndedRequests:
    """Which requests ended without a live endpoint, from the requests table (the audit trail)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def __call__(self, request_ids: set[str]) -> set[str]:
        ended: set[str] = set()
        ids = sorted(request_ids)
        for start in range(0, len(ids), 100):  # BatchGetItem reads at most 100 keys a call
            keys: list[dict[str, Any]] = [
                {"request_id": {"S": request_id}} for request_id in ids[start : start + 100]
            ]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ProjectionExpression": "request_id, #status",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    if item.get("status", {}).get("S") in ENDED_STATUSES:
                        ended.add(item["request_id"]["S"])
                request = answer.get("UnprocessedKeys") or {}
        return ended
