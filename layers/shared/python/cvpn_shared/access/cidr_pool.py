"""The client CIDR pool: a client address block for each request, chosen so that nothing overlaps.

The pool is one configured network (e.g. ``172.16.0.0/12``) split into blocks of one size (e.g. /22).
A request gets the lowest block that overlaps none of the networks in use (the profile's VPC CIDRs,
the profile's routes other than the default route, and the client CIDR of every Client VPN endpoint
in the region) and that no other request holds. Holding a block is a conditional write of one item
per block (``AllocationStore.claim``): when two requests race for the same block, exactly one write
succeeds and the other moves on to the next block. The same state always gives the same block.

A block whose request ended without an endpoint (failed, rolled back) or whose endpoint was
decommissioned is reclaimed: released by a conditional delete naming its holder, then claimed again
under the same rule, so two requests reclaiming it at once still end with one holder.

All blocks of a pool have one size, so two held blocks can only be equal or disjoint; changing the
block size of a pool that already holds blocks keeps those blocks out of the candidates (they overlap),
but is not race-safe against requests still running with the old size.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AllocationStore",
    "CidrPool",
    "CidrPoolExhausted",
    "allocate_client_cidr",
    "networks_in_use",
]

# Client VPN accepts client CIDRs from /12 to /22.
_SMALLEST_CLIENT_BLOCK = 22
_LARGEST_CLIENT_BLOCK = 12


class CidrPoolExhausted(Exception):
    """Every block of the pool overlaps a network in use or is held by another request."""


@dataclass(frozen=True)
class CidrPool:
    """A network split into equal client blocks."""

    network: ipaddress.IPv4Network
    block_prefix_length: int

    def __post_init__(self) -> None:
        if not _LARGEST_CLIENT_BLOCK <= self.block_prefix_length <= _SMALLEST_CLIENT_BLOCK:
            raise ValueError(
                f"client CIDR pool: blocks must be /{_LARGEST_CLIENT_BLOCK} to /{_SMALLEST_CLIENT_BLOCK} "
                f"(what Client VPN accepts), got /{self.block_prefix_length}"
            )
        if self.block_prefix_length < self.network.prefixlen:
            raise ValueError(
                f"client CIDR pool: /{self.block_prefix_length} blocks do not fit in {self.network}"
            )

    @classmethod
    def parse(cls, network: str, block_prefix_length: int) -> CidrPool:
        """A pool from its configuration; raises ValueError saying what is wrong."""
        try:
            parsed = ipaddress.ip_network(network, strict=True)
        except ValueError as error:
            raise ValueError(f"client CIDR pool: {network!r} is not a valid network ({error})") from None
        if not isinstance(parsed, ipaddress.IPv4Network):
            raise ValueError(f"client CIDR pool: {network!r} is IPv6; client CIDRs are IPv4")
        return cls(parsed, block_prefix_length)

    def blocks(self) -> Iterator[ipaddress.IPv4Network]:
        """Every block of the pool, lowest address first."""
        return self.network.subnets(new_prefix=self.block_prefix_length)


class AllocationStore(Protocol):
    """Where held blocks are recorded: one item per block, written only when absent."""

    def held_blocks(self) -> dict[ipaddress.IPv4Network, str]:
        """Blocks held now, with the request holding each (a snapshot: ``claim`` decides)."""
        ...

    def claim(self, block: ipaddress.IPv4Network, *, request_id: str, details: dict[str, Any]) -> bool:
        """Hold ``block`` for ``request_id``; False when another request holds it (conditional write)."""
        ...

    def release(self, block: ipaddress.IPv4Network, *, request_id: str) -> bool:
        """Give ``block`` back when ``request_id`` holds it; False when it does not."""
        ...


def networks_in_use(
    *,
    vpc_cidrs: Iterable[str],
    route_cidrs: Iterable[str],
    endpoints: Iterable[dict[str, Any]],
) -> list[ipaddress.IPv4Network]:
    """The networks a new client CIDR must not overlap.

    The default route (``0.0.0.0/0``) is left out: AWS allows it through the VPN although it overlaps
    everything. Endpoints being deleted still count until they are gone.
    """
    networks: list[ipaddress.IPv4Network] = []
    candidates = [*vpc_cidrs, *route_cidrs]
    candidates += [
        str(endpoint["ClientCidrBlock"])
        for endpoint in endpoints
        if endpoint.get("ClientCidrBlock") and endpoint.get("Status", {}).get("Code") != "deleted"
    ]
    for cidr in candidates:
        network = ipaddress.ip_network(cidr, strict=False)
        if isinstance(network, ipaddress.IPv4Network) and network.prefixlen > 0:
            networks.append(network)
    return networks


def allocate_client_cidr(
    pool: CidrPool,
    store: AllocationStore,
    *,
    in_use: Iterable[ipaddress.IPv4Network],
    request_id: str,
    details: dict[str, Any],
    ended_requests: Callable[[set[str]], set[str]] | None = None,
) -> ipaddress.IPv4Network:
    """Hold and return the lowest free block that overlaps nothing in ``in_use``.

    ``ended_requests(ids)`` answers which of the holders' requests ended without a live endpoint;
    their blocks are reclaimed. Raises CidrPoolExhausted when no block is left.
    """
    excluded = list(in_use)
    held = store.held_blocks()
    holders = {holder for holder in held.values() if holder != request_id}
    ended = ended_requests(holders) if ended_requests and holders else set()
    for block in pool.blocks():
        if any(block.overlaps(network) for network in excluded):
            continue
        holder = held.get(block)
        if holder is not None and holder != request_id:
            if holder not in ended:
                continue
            store.release(block, request_id=holder)  # conditional: only while that request holds it
        if any(other.overlaps(block) and other != block for other in held):
            continue  # a block of another size (the pool was resized) covers part of this one
        if store.claim(block, request_id=request_id, details=details):
            return block
        held[block] = "another request"  # taken since the snapshot
    raise CidrPoolExhausted(
        f"no free /{pool.block_prefix_length} client CIDR is left in {pool.network}: every block overlaps "
        "the VPC, a route or another endpoint, or is held by another request"
    )
