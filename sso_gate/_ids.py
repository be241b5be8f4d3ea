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


# Crockford base32 two characters at a time: 10 bits per lookup
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_last_time = ""  # _encode(_last_ms, 10), reused while the millisecond lasts


def _encode(value: int, length: int) -> str:
    """``value`` in Crockford base32, ``length`` characters (``length`` even), most
    significant first."""
    out = []
    for _ in range(length // 2):
        out.append(_PAIRS[value & 1023])
        value >>= 10
    out.reverse()
    return "".join(out)


def new_id(prefix: str) -> str:
    """``{prefix}_{ULID}``; monotonic within a process, so ids sort by creation."""
    global _last_ms, _last_rand, _last_time
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
            _last_time = _encode(ms, 10)
        _last_ms, _last_rand = ms, rand
        head = _last_time
    return f"{prefix}_{head}{_encode(rand, 16)}"


def random_token(nbytes: int = 32) -> str:
    """URL-safe random token."""
    import secrets

    return secrets.token_urlsafe(nbytes)
