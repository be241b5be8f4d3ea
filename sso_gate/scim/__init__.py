"""SCIM 2.0 core (RFC 7643 schemas, RFC 7644 protocol): pure functions over dicts."""
