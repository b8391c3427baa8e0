"""Access: people asking for remote access through ticket-system webhooks and the request form,
started through the intake workflow (approval when needed, then the result back to the ticket)."""
