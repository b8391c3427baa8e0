"""Personal client certificates for mutual-TLS endpoints: issued by AWS Private CA per grant,
delivered once in a personal .ovpn, revoked through the endpoint's revocation list."""
