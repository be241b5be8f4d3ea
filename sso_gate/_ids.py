"""Prefixed, time-sortable identifiers (``org_01J…``): a ULID after the prefix."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id", "random_token"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """``{prefix}_{ULID}``; monotonic within a process, so ids sort by creation."""
    global _last_ms, _last_rand
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_rand = ms, rand
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def random_token(nbytes: int = 32) -> str:
    """URL-safe random token."""
    import secrets

    return secrets.token_urlsafe(nbytes)
