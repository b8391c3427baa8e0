"""Monitoring of Client VPN connection logs: parsing, detection (R1-R7), findings and health issues.

Pure domain logic; the state the detector keeps between runs goes through ``DetectionStateStore``
(``cvpn_shared.dal.detection_state.DynamoDbDetectionState`` in the functions, the in-memory store in
tests).
"""

from cvpn_shared.monitoring.detection import (
    DetectionResult,
    DetectionSettings,
    DetectionStateConflict,
    DetectionStateStore,
    DetectionStats,
    Detector,
    InMemoryDetectionState,
)
from cvpn_shared.monitoring.findings import (
    DETAIL_TYPE,
    HEALTH_REASONS,
    Finding,
    FindingCounts,
    FindingEntity,
    FindingWindow,
    HealthIssue,
    finding_id,
    is_health_reason,
)
from cvpn_shared.monitoring.records import ConnectionAttempt, ParseStats, parse_event, parse_events
from cvpn_shared.monitoring.state import StateWrite, StoredState

__all__ = [
    "DETAIL_TYPE",
    "HEALTH_REASONS",
    "ConnectionAttempt",
    "DetectionResult",
    "DetectionSettings",
    "DetectionStateConflict",
    "DetectionStateStore",
    "DetectionStats",
    "Detector",
    "Finding",
    "FindingCounts",
    "FindingEntity",
    "FindingWindow",
    "HealthIssue",
    "InMemoryDetectionState",
    "ParseStats",
    "StateWrite",
    "StoredState",
    "finding_id",
    "is_health_reason",
    "parse_event",
    "parse_events",
]
