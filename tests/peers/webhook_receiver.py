"""A real webhook receiver for the end-to-end tests: an HTTP server on 127.0.0.1 (uvicorn) that
answers the first ``--fail-first`` requests with 503 and later ones with 200, and appends one
JSON line per request (headers that matter, body, the status it answered) to ``--log``.

    python -m tests.peers.webhook_receiver --port 9000 --log /tmp/rcv.jsonl --fail-first 3
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def build_app(log_path: str, fail_first: int) -> Any:
    seen = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal seen
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/ping":  # readiness probe: not counted, not logged
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen += 1
        status = 503 if seen <= fail_first else 200
        record = {
            "n": seen,
            "status": status,
            "path": scope["path"],
            "webhook-id": headers.get("webhook-id"),
            "webhook-timestamp": headers.get("webhook-timestamp"),
            "webhook-signature": headers.get("webhook-signature"),
            "body": body.decode(),
        }
        with open(log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(
        build_app(args.log, args.fail_first),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
