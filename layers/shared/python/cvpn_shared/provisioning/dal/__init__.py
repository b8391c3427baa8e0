"""Data access of provisioning: the only place it calls boto3."""
