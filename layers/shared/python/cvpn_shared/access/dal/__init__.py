"""Data access of access requests: the only place they call boto3."""
