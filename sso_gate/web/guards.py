"""Route protection: one predicate, two surfaces (Starlette decorator and FastAPI dependency)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from sso_gate.models import Profile
from sso_gate.web.context import get_context

__all__ = ["AccessDecision", "check_access", "requires_sso", "RequireSSO"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    status: int  # 200, 401 or 403
    reason: str
    profile: Profile | None


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def check_access(
    profile: Profile | None,
    *,
    org: str | Iterable[str] | None = None,
    groups: str | Iterable[str] | None = None,
    roles: str | Iterable[str] | None = None,
) -> AccessDecision:
    """The single access rule: signed in via SSO; in one of ``org`` (if given); member of at
    least one of ``groups`` (if given); holding at least one of ``roles`` (if given)."""
    if profile is None:
        return AccessDecision(False, 401, "SSO sign-in required", None)
    orgs, need_groups, need_roles = _as_tuple(org), _as_tuple(groups), _as_tuple(roles)
    if orgs and profile.organization_id not in orgs:
        return AccessDecision(False, 403, "not a member of the required organization", profile)
    if need_groups and not set(need_groups) & set(profile.groups):
        return AccessDecision(False, 403, "not in a required group", profile)
    held = set(profile.roles) | ({profile.role} if profile.role else set())
    if need_roles and not set(need_roles) & held:
        return AccessDecision(False, 403, "missing a required role", profile)
    return AccessDecision(True, 200, "ok", profile)


def _profile_of(conn: HTTPConnection) -> Profile | None:
    ctx = get_context(conn.scope)
    return None if ctx is None else ctx.profile


def _login_url(conn: HTTPConnection, org: tuple[str, ...]) -> str | None:
    ctx = get_context(conn.scope)
    if ctx is None:
        return None
    s = ctx.gate.settings
    target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
    if len(org) == 1:
        return (
            s.prefix + "/sso/authorize?" + urlencode({"organization": org[0], "return_to": target})
        )
    return s.login_path + "?" + urlencode({"next": target})


def requires_sso(
    org: str | Iterable[str] | None = None,
    groups: str | Iterable[str] | None = None,
    roles: str | Iterable[str] | None = None,
    *,
    redirect: bool = True,
) -> Callable[[F], F]:
    """Protect a Starlette endpoint ``(request) -> Response`` (sync or async).

    Anonymous browser requests are redirected to sign in (``redirect=True``), API calls get 401
    JSON; signed-in users who fail the check get 403.
    """
    orgs = _as_tuple(org)

    def decorator(fn: F) -> F:
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
            decision = check_access(_profile_of(request), org=orgs, groups=groups, roles=roles)
            if not decision.allowed:
                accept = request.headers.get("accept", "")
                if decision.status == 401 and redirect and "text/html" in accept:
                    url = _login_url(request, orgs)
                    if url is not None:
                        return RedirectResponse(url, status_code=303)
                return JSONResponse(
                    {
                        "code": "unauthorized" if decision.status == 401 else "forbidden",
                        "message": decision.reason,
                    },
                    status_code=decision.status,
                )
            if is_async:
                result: Response = await fn(request, *args, **kwargs)
                return result
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(fn, request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


class RequireSSO:
    """FastAPI dependency: ``profile: Profile = Depends(RequireSSO(groups="Admins"))``.

    Raises ``HTTPException`` 401/403 when ``auto_error`` (default); otherwise returns None for
    callers that decide themselves. Needs no FastAPI import.
    """

    def __init__(
        self,
        org: str | Iterable[str] | None = None,
        groups: str | Iterable[str] | None = None,
        roles: str | Iterable[str] | None = None,
        *,
        auto_error: bool = True,
    ) -> None:
        self.org = _as_tuple(org)
        self.groups = _as_tuple(groups)
        self.roles = _as_tuple(roles)
        self.auto_error = auto_error

    def __call__(self, request: Request) -> Profile | None:
        decision = check_access(
            _profile_of(request), org=self.org, groups=self.groups, roles=self.roles
        )
        if decision.allowed:
            return decision.profile
        if self.auto_error:
            headers = {"WWW-Authenticate": "SSO"} if decision.status == 401 else None
            raise HTTPException(
                status_code=decision.status, detail=decision.reason, headers=headers
            )
        return None
