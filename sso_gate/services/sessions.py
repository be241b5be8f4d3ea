"""SSO sessions: a signed cookie that names a server-side session row.

The cookie holds ``itsdangerous``-signed random token (keys from ``SSO_GATE_SECRET_KEYS``: the
first signs, all verify). The database stores only the token's SHA-256, the profile, the expiry
and a revocation time, so any session (or every session of a user) can be killed before it
expires. A verified cookie is cached in-process for ``SSO_GATE_SESSION_CACHE_TTL`` seconds
(default 5), so a repeated cookie costs a dict lookup instead of HMAC + a database read; that
TTL is the longest a revocation made on another instance takes to apply. Revocations made in this
process apply immediately.

The cache is an ``OrderedDict`` of ``cookie -> (session, expiry, monotonic deadline)`` rather
than a ``cachetools.TTLCache``: a hit is one C-level ``dict.get`` and two clock reads (~0.15 µs
instead of ~1 µs). Every entry lives the same TTL, so insertion order is expiry order: expired
entries are dropped from the front on each insert (as ``TTLCache`` does) and, when full, the entry
closest to expiry is evicted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from sso_gate._crypto import hash_token
from sso_gate._ids import new_id, random_token
from sso_gate.models import Profile, Session
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import sessions

__all__ = ["SessionsService"]

_MAX_COOKIE = 512
_CACHE_MAXSIZE = 100_000


class SessionsService:
    """``gate.sessions``: create, verify and revoke SSO sessions."""

    def __init__(self, rt: Runtime, events: EventsService) -> None:
        self._rt = rt
        self._events = events
        s = rt.settings
        # itsdangerous wants the oldest key first and signs with the last one.
        keys = [k.reveal() for k in reversed(s.secret_keys)]
        self._signer = TimestampSigner(keys, salt="sso_gate.session.v1")
        self._lifetime = s.session_lifetime
        self._cache_ttl = s.session_cache_ttl
        # cookie value -> (session, absolute expiry as a UNIX timestamp, cache deadline on the
        # monotonic clock)
        self._cache: OrderedDict[str, tuple[Session, float, float]] = OrderedDict()

    @property
    def lifetime(self) -> int:
        return self._lifetime

    async def create(self, profile: Profile) -> tuple[str, Session]:
        """Start a new session (always a new id: no fixation). Returns (cookie value, session)."""
        now = self._rt.clock()
        token = random_token(32)
        session = Session(
            id=new_id("session"),
            profile=profile,
            created_at=now,
            expires_at=now + timedelta(seconds=self._lifetime),
        )
        async with self._rt.transaction() as conn:
            await repo.insert(
                conn,
                sessions,
                {
                    "id": session.id,
                    "token_hash": hash_token(token),
                    "profile_id": profile.id,
                    "organization_id": profile.organization_id,
                    "email": profile.email.lower(),
                    "profile": profile.to_dict(),
                    "created_at": now,
                    "expires_at": session.expires_at,
                },
            )
        cookie = self._signer.sign(token).decode("ascii")
        return cookie, session

    def cached(self, cookie: str) -> Session | None:
        """The session for a cookie if it was verified recently (hot path, no I/O)."""
        hit = self._cache.get(cookie)
        if hit is not None and hit[2] > time.monotonic() and hit[1] > time.time():
            return hit[0]
        return None

    async def verify(self, cookie: str) -> Session | None:
        """The live session a cookie names, or None (bad signature, expired, revoked, unknown)."""
        hit = self._cache.get(cookie)
        if hit is not None and hit[2] > time.monotonic() and hit[1] > time.time():
            return hit[0]
        if len(cookie) > _MAX_COOKIE:
            return None
        try:
            token = self._signer.unsign(cookie, max_age=self._lifetime).decode("ascii")
        except (BadSignature, SignatureExpired, UnicodeDecodeError):
            return None
        async with self._rt.read() as conn:
            row = await repo.session_by_token_hash(conn, hash_token(token))
        now = self._rt.clock()
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
            return None
        session = Session(
            id=row["id"],
            profile=Profile.from_dict(row["profile"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )
        self._remember(cookie, session)
        return session

    def _remember(self, cookie: str, session: Session) -> None:
        cache = self._cache
        now = time.monotonic()
        cache.pop(cookie, None)  # a refreshed entry moves to the back (expiry order)
        while cache:  # drop expired entries, oldest first
            oldest = next(iter(cache))
            if cache[oldest][2] > now:
                break
            del cache[oldest]
        while cache and len(cache) >= _CACHE_MAXSIZE:
            cache.popitem(last=False)
        cache[cookie] = (session, session.expires_at.timestamp(), now + self._cache_ttl)

    def _forget(self, session_ids: set[str]) -> None:
        for key in [k for k, (s, _, _) in list(self._cache.items()) if s.id in session_ids]:
            self._cache.pop(key, None)

    async def revoke(self, session_id: str) -> bool:
        """Kill one session. Returns False if it was not live."""
        async with self._rt.transaction() as conn:
            row = await repo.get_by_id(conn, sessions, session_id)
            ids = await repo.revoke_sessions(conn, self._rt.clock(), session_id=session_id)
            if ids and row is not None:
                ev = await self._events.record(
                    conn,
                    "session.revoked",
                    {"session_ids": ids, "email": row["email"], "profile_id": row["profile_id"]},
                    row["organization_id"],
                )
        self._forget(set(ids))
        if ids and row is not None:
            await self._events.dispatch([ev])
        return bool(ids)

    async def revoke_user(
        self,
        organization_id: str,
        *,
        email: str | None = None,
        profile_id: str | None = None,
    ) -> list[str]:
        """Kill every live session of one user of an organization (by email or profile id)."""
        if email is None and profile_id is None:
            raise ValueError("give email or profile_id")
        async with self._rt.transaction() as conn:
            ids = await repo.revoke_sessions(
                conn,
                self._rt.clock(),
                organization_id=organization_id,
                email=email.lower() if email else None,
                profile_id=profile_id,
            )
            evs = []
            if ids:
                evs.append(
                    await self._events.record(
                        conn,
                        "session.revoked",
                        {"session_ids": ids, "email": email, "profile_id": profile_id},
                        organization_id,
                    )
                )
        self._forget(set(ids))
        await self._events.dispatch(evs)
        return ids
