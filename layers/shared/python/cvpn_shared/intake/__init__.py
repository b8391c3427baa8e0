"""Intake: requests arriving from ticket-system webhooks and the request form, started through the
intake workflow (approval when needed, then provisioning, then the ticket is told the result)."""
