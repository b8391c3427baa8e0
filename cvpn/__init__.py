"""Command line of Client VPN Autopilot (`cvpn`)."""
