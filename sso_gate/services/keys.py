"""Retiring a secret key: re-seal what older keys sealed or signed with the first key.

``SSO_GATE_SECRET_KEYS`` lists keys; the first encrypts and signs, every key decrypts and
verifies. After a new key has been moved first, :meth:`KeyRotation.reseal` (``sso-gate keys
reseal``) rewrites, one short transaction per table, every stored value another key sealed:

- secrets at rest (``SecretBox``): OIDC client secrets and SAML SP private keys
  (``connections.secret_ciphertext``), webhook endpoint secrets (current and previous) and
  audit stream secrets — decrypted with the key that sealed them, encrypted with the first;
- audit log signatures: chain heads and checkpoints whose HMAC verifies with another configured
  key are signed again with the first. A signature no configured key verifies is left alone
  and counted (``audit verify`` names it): re-signing it would launder tampering.

Afterwards nothing needs the old keys, which can be removed (session cookies they signed end:
users sign in again). Values sealed by a key that is no longer configured cannot be read and
are listed by id. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from sso_gate.services import _audit_chain as achain
from sso_gate.services._runtime import Runtime
from sso_gate.store.tables import (
    audit_chains,
    audit_checkpoints,
    audit_streams,
    connections,
    webhook_endpoints,
)

__all__ = ["KeyRotation", "ResealReport"]

# (table, column) pairs sealed by SecretBox with the row id as associated data
_SEALED: tuple[tuple[sa.Table, str], ...] = (
    (connections, "secret_ciphertext"),
    (webhook_endpoints, "secret_enc"),
    (webhook_endpoints, "previous_secret_enc"),
    (audit_streams, "secret_enc"),
)


@dataclass
class ResealReport:
    """What :meth:`KeyRotation.reseal` did."""

    resealed: dict[str, int] = field(default_factory=dict)
    resigned: dict[str, int] = field(default_factory=dict)
    # "table.column:id" of values sealed by a key that is not configured (cannot be read)
    unreadable: list[str] = field(default_factory=list)
    # "table:organization_id:seq" of signatures no configured key verifies (left as they are)
    invalid_signatures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreadable and not self.invalid_signatures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "resealed": self.resealed,
            "resigned": self.resigned,
            "unreadable": self.unreadable,
            "invalid_signatures": self.invalid_signatures,
        }


class KeyRotation:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._signer = achain.Signer(rt.settings.secret_keys)

    async def reseal(self) -> ResealReport:
        """Re-encrypt and re-sign everything older keys sealed or signed (see the module)."""
        report = ResealReport()
        box = self._rt.box
        known = set(box.kids)
        for table, column in _SEALED:
            name = f"{table.name}.{column}"
            col = table.c[column]
            count = 0
            async with self._rt.transaction() as conn:
                rows = (
                    await conn.execute(sa.select(table.c.id, col).where(col.is_not(None)))
                ).all()
                for row_id, token in rows:
                    kid = box.kid_of(token)
                    if kid == box.current_kid:
                        continue
                    if kid not in known:
                        report.unreadable.append(f"{name}:{row_id}")
                        continue
                    fresh = box.encrypt(box.decrypt(token, row_id), row_id)
                    await conn.execute(
                        sa.update(table).where(table.c.id == row_id).values({column: fresh})
                    )
                    count += 1
            report.resealed[name] = count
        report.resigned["audit_chains"] = await self._resign(
            audit_chains, audit_chains.c.organization_id, "last_seq", "last_hash", report
        )
        report.resigned["audit_checkpoints"] = await self._resign(
            audit_checkpoints, audit_checkpoints.c.id, "seq", "hash", report
        )
        return report

    async def _resign(
        self,
        table: sa.Table,
        key: sa.Column[Any],
        seq_col: str,
        hash_col: str,
        report: ResealReport,
    ) -> int:
        count = 0
        s = self._signer
        async with self._rt.transaction() as conn:
            rows = (await conn.execute(sa.select(table))).all()
            for r in rows:
                m = r._mapping
                org, seq, h, sig = m["organization_id"], m[seq_col], m[hash_col], m["signature"]
                if s.current(org, seq, h, sig):
                    continue
                if not s.valid(org, seq, h, sig):
                    report.invalid_signatures.append(f"{table.name}:{org}:{seq}")
                    continue
                await conn.execute(
                    sa.update(table).where(key == m[key.name]).values(signature=s.sign(org, seq, h))
                )
                count += 1
        return count
