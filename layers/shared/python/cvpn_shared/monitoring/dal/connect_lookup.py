"""What the client-connect handler reads at a login, in one ``BatchGetItem``: the blocklist entries
under the login's keys and, from the grants table, the endpoint's access policy and the user's
connect-time item (keys in ``core.connect_keys``).

Like the blocklist lookup it loads no botocore, reads within the lookup's time budget and raises
``ConnectLookupUnavailable`` when the budget runs out (the caller's fail mode decides then).

Expiries are judged at the later of the caller's clock and the ``Date`` of DynamoDB's answer: the
time of the service that holds the items. On AWS the two agree to the second; on the local cloud the
services run on its emulated clock while function processes keep the machine's, and a grant ends on
the emulated clock (its expiry schedule fires on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from cvpn_shared.core.connect_keys import ENFORCED_ACCESS, connect_key, endpoint_policy_key
from cvpn_shared.monitoring.dal.blocklist import BlockEntry, BlocklistLookup
from cvpn_shared.monitoring.dal.dynamodb_json import BatchGetWithinBudget, LookupUnavailable

__all__ = ["ConnectFacts", "ConnectLookup", "ConnectLookupUnavailable", "GrantGate"]


class ConnectLookupUnavailable(LookupUnavailable):
    """The blocklist and grants could not be read within the lookup's time budget."""


class GrantGate(NamedTuple):
    """What the grants table says of a login: whether its endpoint admits grant holders only (and
    for which profile), and until when the user's grants there run (0: none; a past time: ended)."""

    enforced: bool
    active_until: int = 0
    profile: str = ""


class ConnectFacts(NamedTuple):
    """The blocks in force, the grant gate (None: grants are not read), and the time they were judged
    at (POSIX seconds)."""

    blocks: list[BlockEntry]
    gate: GrantGate | None
    now: int


class ConnectLookup:
    """The blocklist and, when a grants table is given, the grants, read together."""

    def __init__(self, reader: BatchGetWithinBudget, blocklist: BlocklistLookup, grants_table: str) -> None:
        self._reader = reader
        self.blocklist = blocklist
        self.grants_table = grants_table

    def look_up(self, block_keys: Sequence[str], endpoint_id: str, vpn_user: str, now: int) -> ConnectFacts:
        """The facts of a login to ``endpoint_id`` as ``vpn_user`` (empty: no name to hold a grant),
        read within the budget; ``ConnectLookupUnavailable`` when they could not be."""
        keys: dict[str, list[dict[str, Any]]] = {}
        if block_keys:
            keys.update(self.blocklist.keys_by_table(block_keys))
        read_grants = bool(self.grants_table and endpoint_id)
        if read_grants:
            wanted = [endpoint_policy_key(endpoint_id)]
            if vpn_user:
                wanted.append(connect_key(endpoint_id, vpn_user))
            keys.setdefault(self.grants_table, []).extend({"pk": {"S": key}} for key in wanted)
        if not keys:
            return ConnectFacts([], None, now)
        try:
            items = self._reader.get(keys)
        except LookupUnavailable as error:
            raise ConnectLookupUnavailable(f"blocklist and grants {error}") from error
        answered = self._reader.last_answer_time
        if answered is not None and answered > now:
            now = int(answered)
        blocks = self.blocklist.blocks_in(items, now)
        gate = _gate(items.get(self.grants_table, ()), endpoint_id) if read_grants else None
        return ConnectFacts(blocks, gate, now)


def _gate(items: Sequence[Mapping[str, Any]], endpoint_id: str) -> GrantGate:
    policy_key = endpoint_policy_key(endpoint_id)
    enforced, profile, active_until = False, "", 0
    for item in items:
        key = str(item.get("pk", {}).get("S", ""))
        if key == policy_key:
            enforced = str(item.get("access", {}).get("S", "")) == ENFORCED_ACCESS
            profile = str(item.get("profile", {}).get("S", ""))
        elif key.startswith("connect#"):
            try:
                active_until = int(item.get("active_until", {}).get("N", "0"))
            except ValueError:
                active_until = 0  # an unreadable end admits nobody
    return GrantGate(enforced, active_until, profile)
