"""Tamper evidence for the audit log: a per-organization hash chain with signed checkpoints.

Each event gets, shortly after commit and in commit order, a position ``seq`` (1, 2, …) in its
organization's chain and ``hash = SHA-256(previous hash ‖ canonical bytes)`` where the canonical
bytes cover the position and every stored field (``audit_schema.canonical_bytes``). The chain
head (last position and hash) is kept in ``audit_chains`` with an HMAC signature; every
``CHECKPOINT_EVERY`` positions, and before a retention purge deletes the oldest events, a signed
checkpoint stores a position and its hash, so verification can start after purged events.
Signatures use a key derived from ``SSO_GATE_SECRET_KEYS`` (any configured key verifies):
someone who can write to the database but does not hold the key cannot rebuild a consistent
chain.

:func:`verify_rows` walks the stored rows and names the first rows that do not fit:
``edited`` (its content changed; the chain continues from its stored hash), ``deleted``
(positions missing), ``inserted`` (a row that was never part of the chain, a second row at one
position, or rows beyond the signed head) and ``reordered`` (a row that verifies at another
position).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._crypto import derive_key
from sso_gate._ids import new_id
from sso_gate.audit_schema import canonical_bytes
from sso_gate.services import _outbox
from sso_gate.settings import Secret
from sso_gate.store.tables import (
    audit_chains,
    audit_checkpoints,
    audit_event_targets,
    audit_events,
)

__all__ = [
    "GENESIS",
    "CHECKPOINT_EVERY",
    "Signer",
    "chain_pending",
    "link",
    "VerifyReport",
    "Problem",
    "verify_rows",
]

GENESIS = "0" * 64
CHECKPOINT_EVERY = 1000
_BATCH = 5000
_SET = (
    sa.update(audit_events)
    .where(audit_events.c.id == sa.bindparam("b_id"))
    .values(seq=sa.bindparam("b_seq"), hash=sa.bindparam("b_hash"))
)


_INSERT_TARGETS = sa.insert(audit_event_targets)


def link(prev_hash: str, seq: int, row: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_bytes(seq, row)).hexdigest()


class Signer:
    """HMAC-SHA256 over ``organization|seq|hash`` with keys derived from the secret keys."""

    def __init__(self, keys: Sequence[Secret]) -> None:
        self._keys = [derive_key(k, "sso_gate.audit.chain.v1") for k in keys]

    def sign(self, organization_id: str, seq: int, hash_: str) -> str:
        msg = f"{organization_id}|{seq}|{hash_}".encode()
        return hmac.new(self._keys[0], msg, hashlib.sha256).hexdigest()

    def current(self, organization_id: str, seq: int, hash_: str, signature: str) -> bool:
        """Signed with the first key (nothing to re-sign)."""
        return hmac.compare_digest(self.sign(organization_id, seq, hash_), signature)

    def valid(self, organization_id: str, seq: int, hash_: str, signature: str) -> bool:
        msg = f"{organization_id}|{seq}|{hash_}".encode()
        return any(
            hmac.compare_digest(hmac.new(k, msg, hashlib.sha256).hexdigest(), signature)
            for k in self._keys
        )


async def chain_pending(conn: AsyncConnection, signer: Signer, now: datetime) -> int:
    """Chain up to one batch of unchained events (the caller's transaction; one chainer at a
    time) and write their target rows. Returns how many were chained."""
    await _outbox.lock(conn, "audit_chain", now)
    t = audit_events
    # Ordered by (seq, id), the unchained index's own order (seq is NULL in every row here, so
    # this is id order): PostgreSQL then reads the first rows of that index and stops. With
    # ORDER BY id alone it cannot use the index's order and either sorted every unchained row or
    # walked the primary key past every chained one, for each batch: quadratic over a backlog.
    rows = (
        await conn.execute(
            sa.select(t).where(t.c.seq.is_(None)).order_by(t.c.seq, t.c.id).limit(_BATCH)
        )
    ).all()
    if not rows:
        return 0
    orgs = {r.organization_id for r in rows}
    heads = {
        h.organization_id: (h.last_seq, h.last_hash)
        for h in (
            await conn.execute(
                sa.select(audit_chains).where(audit_chains.c.organization_id.in_(orgs))
            )
        ).all()
    }
    existing = set(heads)
    updates: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    for r in rows:
        seq, prev = heads.get(r.organization_id, (0, GENESIS))
        seq += 1
        h = link(prev, seq, r._mapping)
        heads[r.organization_id] = (seq, h)
        updates.append({"b_id": r.id, "b_seq": seq, "b_hash": h})
        if seq % CHECKPOINT_EVERY == 0:
            checkpoints.append(_checkpoint(signer, r.organization_id, seq, h, "periodic", now))
    await conn.execute(_SET, updates)
    # the rows that index targets are written here, with the position, not at ingest
    targets = [
        {
            "event_id": r.id,
            "organization_id": r.organization_id,
            "target_type": t["type"],
            "target_id": t["id"],
        }
        for r in rows
        for t in r.targets
    ]
    if targets:
        await conn.execute(_INSERT_TARGETS, targets)
    for org, (seq, h) in heads.items():
        if org not in orgs:
            continue
        values = {
            "last_seq": seq,
            "last_hash": h,
            "signature": signer.sign(org, seq, h),
            "updated_at": now,
        }
        if org in existing:
            await conn.execute(
                sa.update(audit_chains).where(audit_chains.c.organization_id == org).values(values)
            )
        else:
            await conn.execute(sa.insert(audit_chains).values(organization_id=org, **values))
    if checkpoints:
        await conn.execute(sa.insert(audit_checkpoints), checkpoints)
    return len(rows)


def _checkpoint(
    signer: Signer, org: str, seq: int, hash_: str, reason: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id("audit_checkpoint"),
        "organization_id": org,
        "seq": seq,
        "hash": hash_,
        "signature": signer.sign(org, seq, hash_),
        "reason": reason,
        "created_at": now,
    }


async def checkpoint(
    conn: AsyncConnection,
    signer: Signer,
    org: str,
    seq: int,
    hash_: str,
    reason: str,
    now: datetime,
) -> None:
    exists = (
        await conn.execute(
            sa.select(audit_checkpoints.c.id).where(
                audit_checkpoints.c.organization_id == org, audit_checkpoints.c.seq == seq
            )
        )
    ).first()
    if exists is None:
        await conn.execute(
            sa.insert(audit_checkpoints).values(_checkpoint(signer, org, seq, hash_, reason, now))
        )


@dataclass(slots=True)
class Problem:
    kind: str  # edited | deleted | inserted | reordered | checkpoint | head
    seq: int | None
    id: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "id": self.id, "detail": self.detail}


@dataclass(slots=True)
class VerifyReport:
    organization_id: str
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    unchained: int = 0
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if len(self.problems) < 100:
            self.problems.append(problem)
        else:
            self.more_problems += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "audit_log_verification",
            "organization_id": self.organization_id,
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "unchained": self.unchained,
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.more_problems,
        }


_WINDOW = 5


def _locate(row: Any, candidates: Iterable[tuple[int, str]]) -> int | None:
    """The position at which ``row`` verifies, trying nearby positions and predecessors."""
    for seq_prev, prev_hash in candidates:
        for seq in range(max(1, seq_prev + 1 - _WINDOW), seq_prev + 2 + _WINDOW):
            if link(prev_hash, seq, row) == row["hash"]:
                return seq
    return None


def verify_rows(
    report: VerifyReport,
    rows: Sequence[Any],
    prev_seq: int,
    prev_hash: str,
    head: tuple[int, str] | None = None,
) -> tuple[int, str]:
    """Check one ordered chunk of rows (by ``seq``) continuing from ``(prev_seq, prev_hash)``;
    returns the state to continue the next chunk with. The caller keeps the last row of a
    chunk for the next one (its follower decides between "edited" and "inserted"), and gives
    ``head`` (the signed chain head: position and hash) with the final chunk."""
    by_index = list(rows)
    for i, row in enumerate(by_index):
        seq = row["seq"]
        report.checked += 1
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        if seq == prev_seq:
            report.add(Problem("inserted", seq, row["id"], f"a second row claims position {seq}"))
            continue
        if seq > prev_seq + 1:
            missing = seq - prev_seq - 1
            span = f"{prev_seq + 1}" if missing == 1 else f"{prev_seq + 1}-{seq - 1}"
            report.add(
                Problem(
                    "deleted",
                    prev_seq + 1,
                    None,
                    f"{missing} event(s) missing at position(s) {span}, before {row['id']}",
                )
            )
            prev_seq, prev_hash = seq, row["hash"]  # resynchronise after the gap
            continue
        expected = link(prev_hash, seq, row)
        if expected == row["hash"]:
            prev_seq, prev_hash = seq, row["hash"]
            continue
        nearby = [(r["seq"], r["hash"]) for r in by_index[max(0, i - _WINDOW) : i + _WINDOW]]
        nearby.append((prev_seq, prev_hash))
        original = _locate(row, nearby)
        nxt = by_index[i + 1] if i + 1 < len(by_index) else None
        if original == seq:
            pass  # in place, its predecessor was moved: reported at that row
        elif original is not None:
            report.add(
                Problem(
                    "reordered",
                    seq,
                    row["id"],
                    f"this event belongs at position {original}, not {seq}",
                )
            )
        elif (nxt is not None and link(row["hash"], nxt["seq"], nxt) == nxt["hash"]) or (
            nxt is None and head == (seq, row["hash"])
        ):
            report.add(
                Problem(
                    "edited",
                    seq,
                    row["id"],
                    "the event's content no longer matches its hash (changed after it was written)",
                )
            )
        else:
            report.add(
                Problem(
                    "inserted",
                    seq,
                    row["id"],
                    "this event is not part of the chain (added or rewritten outside the gate)",
                )
            )
        prev_seq, prev_hash = seq, row["hash"]
    return prev_seq, prev_hash
