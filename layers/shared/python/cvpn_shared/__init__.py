"""Shared layer of Client VPN Autopilot: domain logic, data access and models used by every function.

Lambda puts this layer's ``python/`` folder on the import path (``/opt/python``).
"""
