"""Data access: the only place the product calls boto3."""
