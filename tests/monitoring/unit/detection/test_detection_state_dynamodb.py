"""The detection state on DynamoDB (moto): round trip, TTL, batch reads, concurrent runs lose nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cvpn_shared.monitoring.dal.detection_table import DynamoDbDetectionState, UnprocessedKeysError
from cvpn_shared.monitoring.detection.detector import DetectionSettings, Detector
from cvpn_shared.monitoring.detection.entity_store import StateWrite
from cvpn_shared.monitoring.detection.record_cache import RecordCache
from tests.fixtures.connection_logs import ConnectionLog

TABLE = "detection-state"
NOW_EPOCH = 1_800_000_000


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A DynamoDB client on moto with the table as the template declares it: pk (S), TTL on expires_at."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        yield client


def test_round_trip_sets_version_and_ttl(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)
    data = {"seen": {"cvpn-connection-1": 1}, "episodes": {}, "value": "203.0.113.7"}

    lost = store.save([StateWrite("e#device_ip#203.0.113.7", data, 0, NOW_EPOCH + 3600)], now_epoch=NOW_EPOCH)
    loaded = store.load(["e#device_ip#203.0.113.7", "e#user#nobody"], now_epoch=NOW_EPOCH)

    assert lost == []
    assert list(loaded) == ["e#device_ip#203.0.113.7"]
    assert loaded["e#device_ip#203.0.113.7"].data == data
    assert loaded["e#device_ip#203.0.113.7"].version == 1
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "e#device_ip#203.0.113.7"}})["Item"]
    assert item["expires_at"] == {"N": str(NOW_EPOCH + 3600)}
    assert item["version"] == {"N": "1"}
    assert "armed_at" not in item


def test_armed_at_is_readable_without_the_record(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)
    store.save(
        [StateWrite("k", {"n": 1}, 0, NOW_EPOCH + 60, armed_at=1_799_999_000_000)], now_epoch=NOW_EPOCH
    )

    loaded = store.load(["k"], now_epoch=NOW_EPOCH)["k"]

    assert loaded.armed_at == 1_799_999_000_000
    assert loaded.data == {"n": 1}


def test_large_records_are_compressed(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)
    data = {"seen": {f"cvpn-connection-{index:017d}": index for index in range(500)}}

    store.save([StateWrite("big", data, 0, NOW_EPOCH + 60)], now_epoch=NOW_EPOCH)

    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "big"}})["Item"]
    assert "data_z" in item and "data" not in item
    assert store.load(["big"], now_epoch=NOW_EPOCH)["big"].data == data


def test_stale_version_is_a_conflict_not_an_overwrite(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)
    store.save([StateWrite("k", {"n": 1}, 0, NOW_EPOCH + 60)], now_epoch=NOW_EPOCH)
    store.save([StateWrite("k", {"n": 2}, 1, NOW_EPOCH + 60)], now_epoch=NOW_EPOCH)

    lost = store.save(
        [StateWrite("k", {"n": 3}, 1, NOW_EPOCH + 60), StateWrite("new", {"n": 1}, 0, NOW_EPOCH + 60)],
        now_epoch=NOW_EPOCH,
    )
    also_lost = store.save([StateWrite("k", {"n": 4}, 0, NOW_EPOCH + 60)], now_epoch=NOW_EPOCH)

    assert lost == ["k"] and also_lost == ["k"]
    assert store.load(["k"], now_epoch=NOW_EPOCH)["k"].data == {"n": 2}


def test_expired_records_are_not_read_and_may_be_replaced(dynamodb: Any) -> None:
    """TTL deletes lazily: an item past expires_at is ignored, and a new record may take its place."""
    store = DynamoDbDetectionState(dynamodb, TABLE)
    store.save([StateWrite("k", {"n": 1}, 0, NOW_EPOCH + 60)], now_epoch=NOW_EPOCH)

    later = NOW_EPOCH + 61
    assert store.load(["k"], now_epoch=later) == {}
    assert store.save([StateWrite("k", {"n": 2}, 0, later + 60)], now_epoch=later) == []
    assert store.load(["k"], now_epoch=later)["k"].data == {"n": 2}


def test_reads_go_by_batches_of_one_hundred(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)
    writes = [StateWrite(f"key-{index}", {"i": index}, 0, NOW_EPOCH + 60) for index in range(250)]
    assert store.save(writes, now_epoch=NOW_EPOCH) == []
    calls: list[int] = []
    original = dynamodb.batch_get_item

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["RequestItems"][TABLE]["Keys"]))
        return original(**kwargs)

    dynamodb.batch_get_item = counting
    loaded = store.load([f"key-{index}" for index in range(260)], now_epoch=NOW_EPOCH)

    assert calls == [100, 100, 60]
    assert len(loaded) == 250 and loaded["key-7"].data == {"i": 7}


class Throttling:
    """Delegates to the client, but answers part of each batch as unprocessed ``times`` times."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.times = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        keys = kwargs["RequestItems"][TABLE]["Keys"]
        if self.times <= 0:
            return self._client.batch_get_item(**kwargs)
        self.times -= 1
        half = len(keys) // 2
        answer: dict[str, Any] = {"Responses": {TABLE: []}}
        if half:
            request = {TABLE: {**kwargs["RequestItems"][TABLE], "Keys": keys[:half]}}
            answer = self._client.batch_get_item(RequestItems=request)
        answer["UnprocessedKeys"] = {TABLE: {"Keys": keys[half:], "ConsistentRead": True}}
        return answer


def test_unprocessed_keys_are_retried(dynamodb: Any) -> None:
    DynamoDbDetectionState(dynamodb, TABLE).save(
        [StateWrite(f"key-{index}", {"i": index}, 0, NOW_EPOCH + 60) for index in range(10)],
        now_epoch=NOW_EPOCH,
    )
    naps: list[float] = []
    store = DynamoDbDetectionState(Throttling(dynamodb, times=3), TABLE, sleep=naps.append)

    loaded = store.load([f"key-{index}" for index in range(10)], now_epoch=NOW_EPOCH)

    assert sorted(loaded) == sorted(f"key-{index}" for index in range(10))
    assert naps == [0.05, 0.1, 0.2]


def test_unprocessed_keys_that_never_go_through_raise(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(
        Throttling(dynamodb, times=100), TABLE, max_read_retries=2, sleep=lambda _: None
    )

    with pytest.raises(UnprocessedKeysError):
        store.load(["a", "b", "c", "d"], now_epoch=NOW_EPOCH)


def test_two_detectors_sharing_the_table_interleaved_lose_nothing(dynamodb: Any) -> None:
    """Given two ingest runs on one table whose reads and writes interleave (B writes between A's read
    and A's write), when both finish, every failure of both is counted and R1 fires once in total."""
    log = ConnectionLog()
    settings = DetectionSettings()
    now = datetime(2026, 3, 26, 20, 30, tzinfo=UTC)
    attempts_a = log.attempts([log.failure(index * 20, user="a") for index in range(3)])
    attempts_b = log.attempts([log.failure(200 + index * 20, user="b") for index in range(3)])
    table = DynamoDbDetectionState(dynamodb, TABLE)
    outcome: dict[str, Any] = {}

    class InterleavedTable:
        """A's view of the table: run B happens right after A's first read."""

        first_read = True

        def load(self, keys: Any, *, now_epoch: int) -> Any:
            found = table.load(keys, now_epoch=now_epoch)
            if InterleavedTable.first_read:
                InterleavedTable.first_read = False
                outcome["b"] = Detector(settings, table).observe(attempts_b, now=now)
            return found

        def save(self, writes: Any, *, now_epoch: int) -> list[str]:
            return table.save(writes, now_epoch=now_epoch)

        def advance_generation(self) -> tuple[str | None, str]:
            return table.advance_generation()

    outcome["a"] = Detector(settings, InterleavedTable()).observe(attempts_a, now=now)

    source = table.load([f"{log.endpoint_id}#device_ip#203.0.113.7"], now_epoch=int(now.timestamp()))
    record = next(iter(source.values()))
    assert len(record.data["seen"]) == 6
    assert record.data["episodes"]["R1"]["failures"] == 6
    assert record.version == 2  # B's write, then A's retried write
    assert outcome["a"].stats.write_conflicts == 1
    r1 = [f for run in ("a", "b") for f in outcome[run].findings if f.rule_id == "R1"]
    assert len(r1) == 1 and r1[0].window.start == log.at(0)
    ttl = int(
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"{log.endpoint_id}#device_ip#203.0.113.7"}})[
            "Item"
        ]["expires_at"]["N"]
    )
    assert ttl == int(now.timestamp()) + settings.state_ttl_seconds
    assert datetime.fromtimestamp(ttl, UTC) - now == timedelta(seconds=settings.state_ttl_seconds)


def test_the_writer_generation_answers_the_token_it_replaced(dynamodb: Any) -> None:
    store = DynamoDbDetectionState(dynamodb, TABLE)

    first_before, first = store.advance_generation()
    second_before, second = store.advance_generation()

    assert first_before is None
    assert second_before == first
    assert second != first
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "#generation"}})["Item"]
    assert item["generation"] == {"S": second}
    assert "expires_at" not in item  # never expires


def test_a_warm_detector_on_the_table_reads_only_what_it_does_not_hold(dynamodb: Any) -> None:
    log = ConnectionLog()
    settings = DetectionSettings()
    now = datetime(2026, 3, 26, 20, 30, tzinfo=UTC)
    cache = RecordCache()
    store = DynamoDbDetectionState(dynamodb, TABLE)

    first = Detector(settings, store, cache=cache).observe(
        log.attempts([log.failure(index * 20, user="a") for index in range(3)]), now=now
    )
    second = Detector(settings, store, cache=cache).observe(
        log.attempts([log.failure(100 + index * 20, user="a") for index in range(2)]), now=now
    )

    assert first.stats.records_read == 2
    assert second.stats.records_read == 0
    assert [finding.rule_id for finding in second.findings] == ["R1", "R2"]
    source = store.load([f"{log.endpoint_id}#device_ip#203.0.113.7"], now_epoch=int(now.timestamp()))
    assert next(iter(source.values())).version == 2
