"""The development PKI: certificate authority and revocation."""
