"""The client CIDR pool: the lowest block that overlaps nothing, held by one conditional write per block."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

import boto3
import pytest

from cvpn_shared.access.cidr_pool import CidrPool, CidrPoolExhausted, allocate_client_cidr, networks_in_use
from cvpn_shared.access.dal.form_store import ClientCidrAllocations, EndedRequests

net = ipaddress.IPv4Network


class MemoryAllocations:
    """An in-memory AllocationStore with the same conditional semantics as the DynamoDB one."""

    def __init__(self, held: dict[str, str] | None = None) -> None:
        self.held = {net(block): owner for block, owner in (held or {}).items()}

    def held_blocks(self) -> dict[ipaddress.IPv4Network, str]:
        return dict(self.held)

    def claim(self, block: ipaddress.IPv4Network, *, request_id: str, details: dict[str, Any]) -> bool:
        if self.held.get(block, request_id) != request_id:
            return False
        self.held[block] = request_id
        return True

    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        if self.held.get(block) != request_id:
            return False
        del self.held[block]
        return True


POOL = CidrPool.parse("172.16.0.0/20", 22)  # four blocks: .0, .4, .8, .12


def test_the_first_request_gets_the_lowest_block() -> None:
    store = MemoryAllocations()
    block = allocate_client_cidr(POOL, store, in_use=[], request_id="REQ-1", details={})
    assert block == net("172.16.0.0/22")
    assert store.held == {net("172.16.0.0/22"): "REQ-1"}


def test_blocks_overlapping_the_vpc_routes_endpoints_or_held_blocks_are_skipped() -> None:
    """Given .0 overlapping the VPC, .4 a route, .8 another endpoint: the request gets .12."""
    in_use = networks_in_use(
        vpc_cidrs=["172.16.1.0/24"],
        route_cidrs=["0.0.0.0/0", "172.16.6.0/23"],
        endpoints=[
            {"ClientCidrBlock": "172.16.8.0/22", "Status": {"Code": "available"}},
            {"ClientCidrBlock": "172.16.12.0/22", "Status": {"Code": "deleted"}},
        ],
    )
    assert net("0.0.0.0/0") not in in_use  # the default route overlaps everything and is allowed
    block = allocate_client_cidr(POOL, MemoryAllocations(), in_use=in_use, request_id="REQ-1", details={})
    assert block == net("172.16.12.0/22")


def test_allocation_is_deterministic() -> None:
    """The same state gives the same block, whoever asks."""
    held = {"172.16.0.0/22": "REQ-0"}
    answers = {
        allocate_client_cidr(POOL, MemoryAllocations(held), in_use=[], request_id=f"REQ-{n}", details={})
        for n in range(1, 5)
    }
    assert answers == {net("172.16.4.0/22")}


def test_a_block_taken_since_the_snapshot_is_passed_over() -> None:
    class RacingStore(MemoryAllocations):
        def held_blocks(self) -> dict[ipaddress.IPv4Network, str]:
            snapshot = super().held_blocks()
            self.held[net("172.16.0.0/22")] = "REQ-other"  # another request wins the race right now
            return snapshot

    store = RacingStore()
    assert allocate_client_cidr(POOL, store, in_use=[], request_id="REQ-1", details={}) == net(
        "172.16.4.0/22"
    )


def test_an_exhausted_pool_says_so() -> None:
    held = {f"172.16.{third}.0/22": "REQ-0" for third in (0, 4, 8, 12)}
    with pytest.raises(CidrPoolExhausted, match=r"no free /22 client CIDR is left in 172.16.0.0/20"):
        allocate_client_cidr(POOL, MemoryAllocations(held), in_use=[], request_id="REQ-1", details={})


@pytest.mark.parametrize(
    ("network", "prefix", "message"),
    [
        ("172.16.0.0/12", 24, "blocks must be /12 to /22"),
        ("172.16.0.0/22", 20, "do not fit"),
        ("172.16.0.1/12", 22, "not a valid network"),
        ("fd00::/8", 22, "IPv6"),
    ],
)
def test_a_bad_pool_configuration_is_refused(network: str, prefix: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CidrPool.parse(network, prefix)


def test_dynamodb_claims_are_conditional_and_releases_only_by_the_holder(form_table: str) -> None:
    store = ClientCidrAllocations(boto3.client("dynamodb", region_name="us-east-1"), form_table)
    block = net("172.16.0.0/22")
    assert store.claim(block, request_id="REQ-1", details={"requester": "ada@example.com"})
    assert store.claim(block, request_id="REQ-1", details={}), "the holder may claim again (a retry)"
    assert not store.claim(block, request_id="REQ-2", details={})
    assert store.held_blocks() == {block: "REQ-1"}
    assert not store.release(block, request_id="REQ-2")
    assert store.release(block, request_id="REQ-1")
    assert store.held_blocks() == {}


def test_concurrent_allocations_never_collide(form_table: str) -> None:
    """Given 2 threads x 6 requests racing on one moto DynamoDB table, Then 12 distinct blocks are held."""
    pool = CidrPool.parse("172.16.0.0/12", 22)
    results: dict[str, ipaddress.IPv4Network] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def allocate_many(thread: int) -> None:
        store = ClientCidrAllocations(boto3.client("dynamodb", region_name="us-east-1"), form_table)
        barrier.wait()
        for n in range(6):
            request_id = f"REQ-{thread}-{n}"
            try:
                results[request_id] = allocate_client_cidr(
                    pool, store, in_use=[net("172.16.8.0/21")], request_id=request_id, details={}
                )
            except BaseException as error:  # surfaced below
                errors.append(error)

    threads = [threading.Thread(target=allocate_many, args=(thread,)) for thread in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    blocks = list(results.values())
    assert len(blocks) == 12 and len(set(blocks)) == 12
    assert not any(block.overlaps(net("172.16.8.0/21")) for block in blocks)
    store = ClientCidrAllocations(boto3.client("dynamodb", region_name="us-east-1"), form_table)
    assert store.held_blocks() == {block: request_id for request_id, block in results.items()}
    # Lowest-first: the 12 blocks are the 12 lowest that avoid 172.16.8.0/21.
    expected = [block for block in pool.blocks() if not block.overlaps(net("172.16.8.0/21"))][:12]
    assert sorted(blocks) == expected


def test_blocks_of_ended_requests_are_reclaimed_lowest_first() -> None:
    """.0 is held by a request that failed, .4 by a live one: the next request reclaims .0."""
    store = MemoryAllocations({"172.16.0.0/22": "REQ-failed", "172.16.4.0/22": "REQ-live"})
    asked: list[set[str]] = []

    def ended(request_ids: set[str]) -> set[str]:
        asked.append(request_ids)
        return {"REQ-failed"} & request_ids

    block = allocate_client_cidr(
        POOL, store, in_use=[], request_id="REQ-new", details={}, ended_requests=ended
    )
    assert block == net("172.16.0.0/22")
    assert store.held == {net("172.16.0.0/22"): "REQ-new", net("172.16.4.0/22"): "REQ-live"}
    assert asked == [{"REQ-failed", "REQ-live"}]


def test_the_requests_table_tells_which_requests_ended(form_table: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="requests",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
    )
    statuses = {"REQ-1": "SUCCEEDED", "REQ-2": "FAILED", "REQ-3": "ROLLED_BACK", "REQ-4": "DECOMMISSIONED"}
    for request_id, status in statuses.items():
        dynamodb.put_item(
            TableName="requests", Item={"request_id": {"S": request_id}, "status": {"S": status}}
        )
    many = {f"REQ-x{n}" for n in range(150)}  # more than one BatchGetItem call
    ended = EndedRequests(dynamodb, "requests")({*statuses, "REQ-unknown", *many})
    assert ended == {"REQ-2", "REQ-3", "REQ-4"}
