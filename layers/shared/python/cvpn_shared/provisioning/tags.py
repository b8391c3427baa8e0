"""Tags the product puts on every endpoint it creates, and reads before it changes or deletes one.

``MANAGED_BY_TAG`` marks an endpoint as the product's: decommissioning refuses any endpoint without it.
"""

__all__ = ["MANAGED_BY_TAG", "REQUESTER_TAG", "REQUEST_ID_TAG"]

REQUEST_ID_TAG = "cvpn-autopilot:request-id"
REQUESTER_TAG = "cvpn-autopilot:requester"
MANAGED_BY_TAG = "cvpn-autopilot:managed-by"
