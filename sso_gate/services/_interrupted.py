"""What a worker pass the database interrupted leaves behind, settled by the next pass.

The webhook worker and the audit-stream sender both claim rows in one transaction, send, then
record the outcomes in another. A claim is a lease, so a worker that *dies* leaves its rows to
be retried when the lease runs out. A worker that only lost the database part-way through a
pass knows better, and :class:`Interrupted` keeps what it knows:

* claims it made, or may have made (a COMMIT whose answer was lost), whose rows it did not
  send: the next pass releases them, due at once;
* outcomes it sent but could not record: the next pass records them (the record is guarded by
  the claim, so one whose COMMIT did happen changes nothing when repeated).

So an outage neither holds work back for the lease nor sends it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sso_gate._ids import new_id
from sso_gate.exceptions import StorageUnavailableError

__all__ = ["Interrupted"]

log = logging.getLogger("sso_gate.worker")

T = TypeVar("T")


class Interrupted(Generic[T]):
    """One worker's unsettled claims and outcomes; ``what`` names the outcomes in logs."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._unsent: list[str] = []
        self._unrecorded: list[T] = []

    def claim(self) -> str:
        """A new claim token, counted as unsent until :meth:`record` (the claim may commit
        even if its caller never hears so)."""
        token = new_id("claim")
        self._unsent.append(token)
        return token

    async def record(
        self,
        claim: str,
        outcomes: Sequence[T],
        record: Callable[[Sequence[T]], Awaitable[None]],
    ) -> None:
        """``claim``'s rows were sent (or there were none): record ``outcomes``, keeping them
        for the next pass should the database fail meanwhile."""
        self._unsent.remove(claim)
        if outcomes:
            self._unrecorded = list(outcomes)
            await record(outcomes)
            self._unrecorded = []

    async def settle(
        self,
        record: Callable[[Sequence[T]], Awaitable[None]],
        release: Callable[[Sequence[str]], Awaitable[None]],
    ) -> None:
        """Record what an interrupted pass sent, then release the claims it did not send.
        Raises :class:`StorageUnavailableError` (and keeps everything) while the database is
        still away; any other failure to record is logged and left to the claim's lease, so it
        cannot wedge every later pass."""
        if self._unrecorded:
            try:
                await record(self._unrecorded)
            except StorageUnavailableError:
                raise
            except Exception:
                log.exception(
                    "could not record %d %s of an interrupted pass; they are retried when the "
                    "claim's lease runs out",
                    len(self._unrecorded),
                    self._what,
                )
            self._unrecorded = []
        if self._unsent:
            await release(self._unsent)
            self._unsent = []
