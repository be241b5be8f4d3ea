"""Identifiers: ULIDs after a prefix, sortable by creation."""

from __future__ import annotations

import random

from sso_gate import _ids

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(value: int, length: int) -> str:
    """Crockford base32 one character at a time (the ULID spec's definition)."""
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def test_time_part_matches_the_ulid_spec_example() -> None:
    assert _ids._encode(1469918176385, 10) == "01ARYZ6S41"


def test_encoding_matches_the_reference() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        ms, rand = rng.getrandbits(48), rng.getrandbits(80)
        assert _ids._encode(ms, 10) == _reference(ms, 10)
        assert _ids._encode(rand, 16) == _reference(rand, 16)


def test_ids_are_unique_and_sorted_by_creation() -> None:
    ids = [_ids.new_id("audit_event") for _ in range(20000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith("audit_event_") and len(i) == len("audit_event_") + 26 for i in ids)
