"""DMARC: the policy record (RFC 7489 / RFC 9989)."""
