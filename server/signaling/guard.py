"""What every socket passes before any handler of ours runs.

* :class:`SocketServer` refuses events with a reserved or non-string name (a client that emits
  ``connect`` would otherwise reach the connect handler with its own data as ``environ``) and asks
  the :class:`SocketSessions` whether the socket's principal still holds before it dispatches.
* :class:`SocketSessions` knows, for this process, every connected socket with the credential it
  authenticated with (kiosk device token or login session cookie). It caps the sockets per kiosk
  and per account, re-checks a credential exactly as HTTP does (``principal_for_token`` /
  ``principal_for_session``) at most every ``recheck_seconds`` per credential, and a sweep running
  at that interval disconnects the sockets whose kiosk was revoked or re-enrolled, whose login
  session ended or expired, or whose account was deactivated or changed department — whoever did
  it (another process, ``run.py revoke-kiosk``, the database's clock).

The raw credentials stay in this object's memory only (socket.io keeps the same cookies in its
``environ``); they are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from socketio import packet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.participant_ids import account_participant_id, participant_id
from server.auth.roles import Principal, Role
from server.auth.secrets import token_hash
from server.auth.service import principal_for_session
from server.background import FailureStreak, finish_or_cancel
from server.db import transaction
from server.errors import describe, outage_error
from server.kiosks.service import principal_for_token
from server.signaling.events import Error, Revoked, emit
from server.signaling.messages import SignalingError

log = logging.getLogger(__name__)

#: Event names only the server itself may raise (socket.io's own, and our catch-all's name).
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "__disconnect_final", "*"})

#: Events that check the credential against the database every time (no cache).
FRESH_CHECK_EVENTS = frozenset({"join"})

#: At shutdown, how long a sweep in progress may take to finish.
SHUTDOWN_GRACE_SECONDS = 5.0

#: How a credential is looked up again: (database session, raw credential) -> principal or None.
Lookup = Callable[[AsyncSession, str], Any]


@dataclass(frozen=True)
class Credential:
    """What a socket authenticated with: the kiosk's device token or the account's session key."""

    principal: Principal
    secret: str = field(repr=False)

    @property
    def lookup(self) -> Lookup:
        return principal_for_token if self.principal.role is Role.KIOSK else principal_for_session

    @property
    def key(self) -> str:
        """One cache entry per credential (its hash: the raw value is no dictionary key)."""
        return f"{self.principal.role.value}:{token_hash(self.secret)}"

    def same_principal(self, now: Principal | None) -> bool:
        """The credential still names the same principal with the same rights (an account moved to
        another department, or granted/refused a permission, starts its sockets over). Only the
        display name may change underneath an open socket."""
        return (
            now is not None
            and dataclasses.replace(now, display_name=self.principal.display_name) == self.principal
        )


class SocketLimitReached(Exception):
    """The principal already has ``limit`` sockets open in this process."""


@dataclass
class SocketSessions:
    sio: socketio.AsyncServer
    # The database comes up in a cleanup_ctx after this object is made: looked up when needed.
    sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]]
    limit: int = 4
    recheck_seconds: float = 5.0
    _by_sid: dict[str, Credential] = field(default_factory=dict)
    _by_owner: dict[str, set[str]] = field(default_factory=dict)  # participant id -> sids
    _checked: dict[str, float] = field(default_factory=dict)  # credential key -> monotonic time

    # -- registry (synchronous: the cap check and the insert cannot be split by another task) -------
    def register(self, sid: str, credential: Credential) -> None:
        """Count the socket against its principal's cap; SocketLimitReached if it is full."""
        owner = participant_id(credential.principal)
        sids = self._by_owner.setdefault(owner, set())
        if len(sids) >= self.limit:
            raise SocketLimitReached(owner)
        sids.add(sid)
        self._by_sid[sid] = credential
        self._checked[credential.key] = time.monotonic()  # authenticated just now

    def unregister(self, sid: str) -> None:
        credential = self._by_sid.pop(sid, None)
        if credential is None:
            return
        owner = participant_id(credential.principal)
        sids = self._by_owner.get(owner, set())
        sids.discard(sid)
        if not sids:
            self._by_owner.pop(owner, None)
        if not any(c.key == credential.key for c in self._by_sid.values()):
            self._checked.pop(credential.key, None)

    def count(self, principal: Principal) -> int:
        return len(self._by_owner.get(participant_id(principal), ()))

    def sids_of(self, principal_key: str) -> list[str]:
        """Sockets of one kiosk (``k<id>``) or account (``a<id>``)."""
        return sorted(self._by_owner.get(principal_key, ()))

    # -- re-checks ----------------------------------------------------------------------------------
    async def _valid(self, credential: Credential) -> bool:
        async with transaction(self.sessionmaker_of()) as session:
            return credential.same_principal(await credential.lookup(session, credential.secret))

    async def still_valid(self, sid: str, *, fresh: bool = False) -> bool:
        """Before each event: False if the socket is unknown or its credential no longer holds
        (checked against the database at most every ``recheck_seconds`` per credential, or now
        if ``fresh``)."""
        credential = self._by_sid.get(sid)
        if credential is None:
            return False
        checked = self._checked.get(credential.key)
        if not fresh and checked is not None and time.monotonic() - checked < self.recheck_seconds:
            return True
        if not await self._valid(credential):
            return False
        self._checked[credential.key] = time.monotonic()
        return True

    def ended_code(self, sid: str) -> str:
        """What a refused socket is told: its kiosk was revoked, or its login session ended."""
        credential = self._by_sid.get(sid)
        return (
            "kiosk_revoked"
            if credential is not None and credential.principal.role is Role.KIOSK
            else "session_ended"
        )

    async def end(self, sid: str) -> None:
        """Close a socket whose principal no longer holds; its page is told why first."""
        credential = self._by_sid.get(sid)
        if credential is None:
            await self.sio.disconnect(sid)  # never registered (or already ended): nothing to tell
            return
        code = self.ended_code(sid)
        self.unregister(sid)  # at once: a second event of the same socket is refused without a query
        log.warning(
            "socket closed: its credential no longer holds",
            extra={"sid": sid, "actor": credential.principal.audit_label, "code": code},
        )
        await emit(self.sio, Revoked(code, "sign in or enroll again"), to=sid)
        await self.sio.disconnect(sid)

    async def end_principal(self, principal_key: str) -> int:
        """Close every socket of one kiosk (``k<id>``) or account (``a<id>``) in this process."""
        sids = self.sids_of(principal_key)
        for sid in sids:
            await self.end(sid)
        return len(sids)

    async def end_login_session(self, session_id: str) -> int:
        """Close the sockets opened with one login session (``Principal.session_id``): logout."""
        sids = sorted(sid for sid, c in self._by_sid.items() if c.principal.session_id == session_id)
        for sid in sids:
            await self.end(sid)
        return len(sids)

    async def sweep(self) -> int:
        """Check every credential in use once; close the sockets of those that no longer hold."""
        by_key: dict[str, Credential] = {c.key: c for c in self._by_sid.values()}
        ended = 0
        for key, credential in by_key.items():
            try:
                valid = await self._valid(credential)
            except Exception as exc:
                # A database hiccup is no reason to close the village's meeting: next sweep.
                if outage_error(exc) is not None:
                    # The others would fail alike; one line per sweep, not a traceback per socket.
                    log.warning("socket credentials not checked: %s", describe(exc))
                    break
                log.exception(
                    "socket credential check failed", extra={"actor": credential.principal.audit_label}
                )
                continue
            if valid:
                self._checked[key] = time.monotonic()
                continue
            for sid in [s for s, c in self._by_sid.items() if c.key == key]:
                await self.end(sid)
                ended += 1
        return ended

    async def run(self) -> AsyncIterator[None]:
        """cleanup_ctx body: sweep every ``recheck_seconds`` while the app runs."""

        stop = asyncio.Event()

        async def loop() -> None:
            # Stops between sweeps (a cancel inside a query would leave its connection mid-query).
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.recheck_seconds)
                if not stop.is_set():
                    try:
                        await self.sweep()
                    except Exception as exc:  # a dead sweep would never close a revoked socket again
                        health.failed(exc)
                    else:
                        health.succeeded()

        health = FailureStreak("the socket credential sweep", log)
        task = asyncio.get_running_loop().create_task(loop(), name="socket-sweep")
        try:
            yield
        finally:
            stop.set()
            await finish_or_cancel(task, SHUTDOWN_GRACE_SECONDS)


class SocketServer(socketio.AsyncServer):
    """socket.io's server with a gate in front of the event handlers (see the module docstring)."""

    sessions: SocketSessions | None = None

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        # python-socketio 5 dispatches every client EVENT packet here; pinned by
        # tests/security/test_sockets_guard.py (a renamed method would let reserved names through).
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        event = data[0] if isinstance(data, list) and data else None
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            log.warning("reserved or malformed socket event refused", extra={"sid": sid or ""})
            if sid is not None:
                error = SignalingError("reserved_event", "this event name is reserved")
                refused = Error.of(error, str(event))
                await self.emit(refused.NAME, refused.to_dict(), to=sid, namespace=namespace)
                await self._ack(eio_sid, namespace, id, error.to_json())
            return
        # Entering a room always asks the database: a kiosk revoked a moment ago joins nothing.
        fresh = event in FRESH_CHECK_EVENTS
        sessions = self.sessions
        try:
            valid = sid is None or sessions is None or await sessions.still_valid(sid, fresh=fresh)
        except Exception as exc:
            outage = outage_error(exc)
            if outage is None or sid is None:
                raise
            # The database is down (or its disk full): the page hears so and may try again.
            log.warning("socket event not checked: %s", outage.message, extra={"sid": sid, "event": event})
            error = SignalingError(outage.code, outage.message)
            refused = Error.of(error, event)
            await self.emit(refused.NAME, refused.to_dict(), to=sid, namespace=namespace)
            await self._ack(eio_sid, namespace, id, error.to_json())
            return
        if not valid and sid is not None and sessions is not None:
            ended = SignalingError(sessions.ended_code(sid), "sign in or enroll again")
            await self._ack(eio_sid, namespace, id, ended.to_json())
            await sessions.end(sid)
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _ack(self, eio_sid: str, namespace: str, id: int | None, body: dict[str, Any]) -> None:
        """Answer a refused event's acknowledgement (if the client asked for one) so it does not wait."""
        if id is not None:
            await self._send_packet(
                eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[body])
            )


def _sessions(sio: socketio.AsyncServer) -> SocketSessions | None:
    return sio.sessions if isinstance(sio, SocketServer) else None


async def end_login_session_sockets(sio: socketio.AsyncServer, session_id: str) -> int:
    """Logout: close this process's sockets opened with the login session (``Principal.session_id``).
    Other processes notice within ``MAEUL_SOCKET_RECHECK_SECONDS`` (the session row is gone)."""
    sessions = _sessions(sio)
    return 0 if sessions is None else await sessions.end_login_session(session_id)


async def end_principal_sockets(sio: socketio.AsyncServer, principal_key: str) -> int:
    """Close the sockets of one kiosk (``k<id>``) or account (``a<id>``) in this process at once,
    each told ``revoked`` first (the sweep does it in every process within
    ``MAEUL_SOCKET_RECHECK_SECONDS`` anyway)."""
    sessions = _sessions(sio)
    return 0 if sessions is None else await sessions.end_principal(principal_key)


async def end_account_sockets(sio: socketio.AsyncServer, account_id: int) -> int:
    """An account deactivated: close its sockets in this process at once."""
    return await end_principal_sockets(sio, account_participant_id(account_id))
