"""OpenID Connect relying-party core: sans-I/O functions over dataclasses.

HTTP fetches and the clock are done by the caller (``services/sso.py``) and passed in.
"""
