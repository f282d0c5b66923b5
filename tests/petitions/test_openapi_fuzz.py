"""The OpenAPI document describes every /api/v1 route, and schemathesis finds no 5xx in them.

Schemathesis runs against a real server on loopback, once as a kiosk (bearer token) and once as an
admin (session cookie + CSRF header), with a limited number of examples per operation.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.conftest import make_settings
from tests.petitions.live import PASSWORD, LiveServer, running

MAX_EXAMPLES = "15"
FOUNDATION = {
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/kiosk/enroll"),
    ("GET", "/api/v1/admin/kiosks"),
    ("POST", "/api/v1/admin/kiosks"),
    ("POST", "/api/v1/admin/kiosks/{kiosk_id}/revoke"),
}


async def test_document_lists_every_api_route(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path))
    client: TestClient = await aiohttp_client(app)
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    petition_routes = set()
    all_routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/v1/") or route.method == "HEAD":
            continue
        all_routes.add((route.method, path))
        if route.handler.__module__.startswith("server.petitions") and path != "/api/v1/openapi.json":
            petition_routes.add((route.method, path))
    # Everything documented exists; every petitions route and the foundation's API are documented.
    assert documented <= all_routes
    assert petition_routes and petition_routes <= documented
    assert FOUNDATION <= documented
    filing = document["paths"]["/api/v1/kiosk/petitions"]["post"]
    assert filing["x-roles"] == ["kiosk"]
    assert set(filing["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert document["components"]["schemas"]["FileInput"]["additionalProperties"] is False


async def _admin_headers(server: LiveServer) -> dict[str, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(
            server.base_url + "/api/v1/session", json={"username": "admin", "password": PASSWORD}
        ) as r:
            assert r.status == 201
        async with http.get(server.base_url + "/official") as r:
            match = re.search(r'<meta name="csrf-token" content="([^"]+)">', await r.text())
            assert match
        cookies = {c.key: c.value for c in http.cookie_jar}
    cookie = f"maeul_session={cookies['maeul_session']}; maeul_csrf={cookies['maeul_csrf']}"
    return {"Cookie": cookie, "X-CSRF-Token": match.group(1)}


def _schemathesis(
    server: LiveServer, headers: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    args = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        server.base_url + "/api/v1/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "4",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--warnings",
        "off",
        *extra,
    ]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        kiosk = _schemathesis(
            server,
            {"Authorization": f"Bearer {server.seeded.kiosk_token}"},
            "--include-tag",
            "kiosk petitions",
            "--include-tag",
            "notices",
            "--include-tag",
            "duty",
            "--include-tag",
            "rooms",
        )
        assert kiosk.returncode == 0, kiosk.stdout[-6000:] + kiosk.stderr[-2000:]
        headers = asyncio.run(_admin_headers(server))
        admin = _schemathesis(server, headers, "--exclude-operation-id", "delete_api_v1_session")
        assert admin.returncode == 0, admin.stdout[-6000:] + admin.stderr[-2000:]
        log = (server.data_dir / "server.log").read_text()
    assert "unhandled error" not in log
    # The admin run really got past authentication and CSRF: fuzzed departments were created.
    db = sqlite3.connect(server.data_dir / "maeul.db")
    try:
        created = db.execute("SELECT count(*) FROM org_departments").fetchone()[0]
    finally:
        db.close()
    assert created > len(server.seeded.department_ids)
