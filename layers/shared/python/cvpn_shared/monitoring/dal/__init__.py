"""Data access of monitoring: the only place it calls boto3."""
