"""The app the load test serves: ``sso-gate demo``'s app, with or without the gate.

Run by ``benchmarks/load/run.py`` as ``uvicorn --app-dir benchmarks/load server:create --factory``
with its settings in ``SSO_GATE_*`` environment variables (``SSO_GATE_RATE_LIMITS=off`` among
them) and ``SSO_GATE_LOAD_MODE``:

- ``gate``: the demo app wrapped by the gate, the development IdP mounted at ``/dev-idp``; at
  start-up (ASGI lifespan) the database is migrated and seeded like ``sso-gate demo`` does:
  Acme (``acme.test``, SSO required, OIDC to the dev IdP), Initech (``initech.test``, SSO
  required, SAML to the dev IdP, signed AuthnRequests), Globex (no SSO). The dev IdP makes new
  keys in every process, so the connections are made here, not by the runner.
- ``bare``: the same Starlette app (same routes, same pages, same password login) without the
  gate: the baseline. Its pages read the gate's context with ``get_context``, which is ``None``
  without the gate, so they answer exactly what they answer to an anonymous user behind it.
"""

from __future__ import annotations

import os
from typing import Any

from sso_gate.demo import build_demo, seed
from sso_gate.settings import Settings

Scope = dict[str, Any]


def create() -> Any:
    demo = build_demo(settings=Settings.from_env())
    mode = os.environ.get("SSO_GATE_LOAD_MODE", "gate")
    if mode == "bare":
        return demo.app.app  # the Starlette app inside GateMiddleware
    if mode != "gate":
        raise SystemExit(f"SSO_GATE_LOAD_MODE must be gate or bare, not {mode!r}")
    wrapped = demo.app

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await wrapped(scope, receive, send)
            return

        async def seeded_receive() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await seed(demo)  # before the gate starts its worker
            return message

        await wrapped(scope, seeded_receive, send)

    return app
