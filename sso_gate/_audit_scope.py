"""Which ``organization_id`` values name an audit log (shared by the REST API and the CLI).

An audit log outlives its organization (``organization.deleted`` is its last entry), and the
gate's own organization-less actions live under ``GATE_SCOPE``; so a read is refused as unknown
only when the id is none of: an organization, ``"gate"``, an id that still has audit entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sso_gate.audit_schema import GATE_SCOPE
from sso_gate.exceptions import NotFoundError, ValidationError

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["check_audit_scope"]


async def check_audit_scope(gate: SSOGate, organization_id: str | None) -> str:
    """``organization_id`` if it names an audit log; else a 422 (missing) or 404 (unknown)."""
    if not organization_id:
        raise ValidationError(
            'organization_id is required (an organization id, or "gate" for the gate\'s own '
            "organization-less entries)",
            field="organization_id",
        )
    if organization_id == GATE_SCOPE:
        return organization_id
    try:
        await gate.organizations.get(organization_id)
    except NotFoundError:
        if not (await gate.audit.list(organization_id, limit=1)).data:
            raise NotFoundError(
                f"organization {organization_id[:100]!r} not found, and no audit log is kept "
                "under that id",
                code="organization_not_found",
            ) from None
    return organization_id
