"""The local cloud: an embedded AWS (moto, extended with the Client VPN API) on loopback.

It runs the product's own template.yaml, state machines and Lambda handlers without an AWS account or
Docker. The product never imports this package; it reaches AWS through boto3 and the standard
``AWS_ENDPOINT_URL`` setting, which the local cloud sets for the processes it runs.
"""
