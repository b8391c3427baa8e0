"""Monitoring: connection logs read from CloudWatch Logs (``ingest``), parsed into connection
attempts (``attempts``), judged by the detection rules (``detection``), published as findings (the
one schema: ``findings``), delivered to alert channels (``alerting``), and enforced at connect
(``client_connect``). The state detection keeps goes through ``detection.entity_store``
(``dal.detection_table`` in the functions, the in-memory store in tests)."""
