"""TURN settings and credential minting: start-up validation with clear errors, the coturn
use-auth-secret format, and the secret never showing in a repr or a join ack."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from server.config import IceTransportPolicy, SecretStr, Settings
from server.errors import ConfigError
from server.signaling.ice import client_ice_servers, client_rtc_config, sfu_ice_servers, turn_credential

SECRET = "s3cret-" + "q" * 40
URLS = "turn:turn.gangjin.example:3478?transport=udp,turn:turn.gangjin.example:3478?transport=tcp"


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"MAEUL_DATA_DIR": str(tmp_path), **values}


def test_turn_settings_are_parsed(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text(SECRET + "\n")
    settings = Settings.from_env(
        env(
            tmp_path,
            MAEUL_TURN_URLS=URLS + ", turns:turn.gangjin.example:5349?transport=tcp",
            MAEUL_TURN_SECRET_FILE=str(secret_file),
            MAEUL_TURN_TTL_SECONDS="900",
            MAEUL_ICE_TRANSPORT_POLICY="relay",
        )
    )
    assert settings.turn_urls == (
        "turn:turn.gangjin.example:3478?transport=udp",
        "turn:turn.gangjin.example:3478?transport=tcp",
        "turns:turn.gangjin.example:5349?transport=tcp",
    )
    assert settings.turn_secret == SecretStr(SECRET)  # the file's trailing newline is not part of it
    assert settings.turn_ttl_seconds == 900
    assert settings.ice_transport_policy is IceTransportPolicy.RELAY
    inline = Settings.from_env(env(tmp_path, MAEUL_TURN_URLS=URLS, MAEUL_TURN_SECRET=SECRET))
    assert inline.turn_secret == SecretStr(SECRET)
    assert inline.turn_ttl_seconds == 3600 and inline.ice_transport_policy is IceTransportPolicy.ALL
    plain = Settings.from_env(env(tmp_path))
    assert plain.turn_urls == () and plain.turn_secret is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"MAEUL_TURN_URLS": URLS}, "no TURN secret"),
        ({"MAEUL_TURN_SECRET": SECRET}, "MAEUL_TURN_URLS is empty"),
        ({"MAEUL_TURN_URLS": "stun:turn.gangjin.example", "MAEUL_TURN_SECRET": SECRET}, "not a TURN URL"),
        ({"MAEUL_TURN_URLS": "turn:host:99999", "MAEUL_TURN_SECRET": SECRET}, "not a TURN URL"),
        ({"MAEUL_TURN_URLS": "turn:host?transport=sctp", "MAEUL_TURN_SECRET": SECRET}, "not a TURN URL"),
        ({"MAEUL_TURN_URLS": "turns:host:5349?transport=udp", "MAEUL_TURN_SECRET": SECRET}, "TCP only"),
        (
            {"MAEUL_TURN_URLS": URLS, "MAEUL_TURN_SECRET": SECRET, "MAEUL_TURN_SECRET_FILE": "/x"},
            "not both",
        ),
        ({"MAEUL_TURN_URLS": URLS, "MAEUL_TURN_SECRET_FILE": "/nonexistent/turn"}, "cannot read"),
        ({"MAEUL_TURN_URLS": URLS, "MAEUL_TURN_SECRET": SECRET, "MAEUL_TURN_TTL_SECONDS": "5"}, "between"),
        ({"MAEUL_TURN_URLS": URLS, "MAEUL_TURN_SECRET": SECRET, "MAEUL_TURN_TTL_SECONDS": "1h"}, "integer"),
        ({"MAEUL_ICE_TRANSPORT_POLICY": "relay"}, "needs a TURN server"),
        ({"MAEUL_ICE_TRANSPORT_POLICY": "never"}, "all or relay"),
        (
            {
                "MAEUL_TURN_URLS": URLS,
                "MAEUL_TURN_SECRET": SECRET,
                "MAEUL_ICE_SERVERS": '[{"urls": "turn:old.example", "username": "u", "credential": "pw"}]',
            },
            "static credential",
        ),
        (
            {
                "MAEUL_ENV": "production",
                "MAEUL_SECRET_KEY": "k" * 40,
                "MAEUL_TURN_URLS": URLS,
                "MAEUL_TURN_SECRET": "short",
            },
            "at least 32",
        ),
    ],
)
def test_bad_turn_settings_are_clear_errors(tmp_path: Path, values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env(tmp_path, **values))
    assert SECRET not in str(caught.value)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Settings.from_env(env(tmp_path, MAEUL_TURN_URLS=URLS, MAEUL_TURN_SECRET_FILE=str(tmp_path / "empty")))


def test_relay_policy_accepts_a_static_turn_server(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env(
            tmp_path,
            MAEUL_ICE_SERVERS='[{"urls": "turn:t.example:3478", "username": "u", "credential": "c"}]',
            MAEUL_ICE_TRANSPORT_POLICY="RELAY",
        )
    )
    assert settings.ice_transport_policy is IceTransportPolicy.RELAY


def test_secrets_never_show_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path, MAEUL_TURN_URLS=URLS, MAEUL_TURN_SECRET=SECRET))
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    static = Settings.from_env(
        env(
            tmp_path,
            MAEUL_ICE_SERVERS='[{"urls": "turn:t.example", "username": "u", "credential": "pw-123"}]',
        )
    )
    assert "pw-1" not in repr(static)


def test_credential_is_coturn_rest_format() -> None:
    minted = turn_credential(SecretStr(SECRET), "k7", 600, now=1_700_000_000.9)
    assert minted.username == "1700000600:k7" and minted.expires_at == 1_700_000_600
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"1700000600:k7", hashlib.sha1).digest()).decode()
    assert minted.credential == expected
    # Known answer from openssl: printf '60:a1' | openssl dgst -sha1 -hmac secret -binary | base64
    assert turn_credential(SecretStr("secret"), "a1", 60, now=0).credential == "1/CIWTpMCaBGmQ5WdA8FHPQPsSQ="
    with pytest.raises(ValueError):
        turn_credential(SecretStr(SECRET), "k:7", 600, now=0)
    with pytest.raises(ValueError):
        turn_credential(SecretStr(SECRET), "", 600, now=0)


def test_each_participant_gets_its_own_credential_and_never_the_secret(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env(
            tmp_path,
            MAEUL_TURN_URLS=URLS,
            MAEUL_TURN_SECRET=SECRET,
            MAEUL_TURN_TTL_SECONDS="600",
            MAEUL_ICE_SERVERS='[{"urls": "stun:turn.gangjin.example:3478"}]',
        )
    )
    kiosk = client_ice_servers(settings, "k3", now=1_000_000)
    official = client_ice_servers(settings, "a1", now=1_000_000)
    assert kiosk[0]["urls"] == list(settings.turn_urls)  # TURN first: aiortc takes the first TURN URL
    assert kiosk[0]["username"] == "1000600:k3" and official[0]["username"] == "1000600:a1"
    assert kiosk[0]["credential"] != official[0]["credential"]
    assert kiosk[1] == {"urls": ["stun:turn.gangjin.example:3478"]}
    config = client_rtc_config(settings, "k3")
    assert SECRET not in repr(config)
    assert config["ice_transport_policy"] == "all"
    # The SFU itself never allocates relays: only the static list.
    assert [list(s.urls) if isinstance(s.urls, list) else s.urls for s in sfu_ice_servers(settings)] == [
        ["stun:turn.gangjin.example:3478"]
    ]
