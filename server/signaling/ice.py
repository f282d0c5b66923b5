"""ICE servers (STUN/TURN) for the SFU and for the pages, from Maeul's settings only: an empty list
means no STUN at all (aiortc would otherwise add a public one).

TURN uses coturn's shared-secret scheme (``use-auth-secret``, the "TURN REST API"): Maeul and
coturn share one secret; for each participant Maeul mints username ``"<unix expiry>:<participant
id>"`` and credential ``base64(HMAC-SHA1(secret, username))``. coturn recomputes the HMAC, so it
needs no user database, and a credential stops working at its expiry. No page ever sees the secret
or a long-lived password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from aiortc import RTCIceServer

from server.config import SecretStr, Settings

# coturn's default rest-api-separator.
SEPARATOR = ":"


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


def turn_credential(secret: SecretStr, participant_id: str, ttl_seconds: int, now: float) -> TurnCredential:
    """A TURN REST credential for ``participant_id``, valid until ``now + ttl_seconds``.

    The participant id after the expiry shows in coturn's logs, so a relay session can be traced
    back to a hall or an official without any password being logged.
    """
    if not participant_id or SEPARATOR in participant_id:
        raise ValueError(f"participant id must be non-empty and free of {SEPARATOR!r}")
    expires_at = int(now) + ttl_seconds
    username = f"{expires_at}{SEPARATOR}{participant_id}"
    digest = hmac.new(secret.get().encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def sfu_ice_servers(settings: Settings) -> tuple[RTCIceServer, ...]:
    """The SFU's own ICE servers: only the static list. The server is the reachable end of every
    call (the halls' relays reach its host candidates), so it never allocates a TURN relay itself —
    that would double every relayed stream and use up coturn's quotas."""
    return tuple(
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in settings.ice_servers
    )


def client_ice_servers(
    settings: Settings, participant_id: str, now: float | None = None
) -> list[dict[str, Any]]:
    """RTCConfiguration.iceServers for one participant's page (empty: no STUN at all, never a
    public one). The TURN entry comes first with a credential minted for this participant: aiortc
    (the headless kiosk) uses only the first TURN URL it is given."""
    servers: list[dict[str, Any]] = []
    if settings.turn_urls and settings.turn_secret is not None:
        minted = turn_credential(
            settings.turn_secret,
            participant_id,
            settings.turn_ttl_seconds,
            time.time() if now is None else now,
        )
        servers.append(
            {"urls": list(settings.turn_urls), "username": minted.username, "credential": minted.credential}
        )
    for s in settings.ice_servers:
        entry: dict[str, Any] = {"urls": list(s.urls)}
        if s.username is not None:
            entry["username"] = s.username
        if s.credential is not None:
            entry["credential"] = s.credential
        servers.append(entry)
    return servers


def client_rtc_config(settings: Settings, participant_id: str) -> dict[str, Any]:
    """What a page needs to build its RTCPeerConnection (part of the ``join`` ack)."""
    return {
        "ice_servers": client_ice_servers(settings, participant_id),
        "ice_transport_policy": settings.ice_transport_policy.value,
    }
