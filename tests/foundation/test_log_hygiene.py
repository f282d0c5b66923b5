"""A malformed request from a client (a scanner's NUL in a header) is answered 400 and logged as
one WARNING line with the client's address and the reason: no ERROR, no traceback. The real
server process, so the logging set-up is the one operators run."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

from tests.petitions.live import prepare

BAD_REQUESTS = (
    b"GET / HTTP/1.1\r\nHost: maeul\r\nX-Scan: a\x00b\r\n\r\n",  # NUL in a header value
    b"GET / HTTP/1.1\r\nHost: maeul\r\nBad Header: x\r\n\r\n",  # space in a header name
)


def _send_raw(base_url: str, request: bytes) -> bytes:
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_malformed_requests_are_one_warning_line_each(tmp_path: Path) -> None:
    server = prepare(tmp_path)
    server.env["MAEUL_LOG_JSON"] = "true"
    server.start()
    try:
        answers = [_send_raw(server.base_url, request) for request in BAD_REQUESTS]
    finally:
        server.stop()
    assert all(answer.split(b"\r\n")[0].endswith(b" 400 Bad Request") for answer in answers), answers

    lines = (server.data_dir / "server.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    malformed = [e for e in entries if e["msg"].startswith("malformed request from 127.0.0.1: ")]
    assert len(malformed) == len(BAD_REQUESTS), entries
    assert all(e["level"] == "warning" and "exc" not in e and e["client"] == "127.0.0.1" for e in malformed)
    assert all(len(e["msg"]) < 300 and "\n" not in e["msg"] for e in malformed)
    assert [e for e in entries if e["level"] in ("error", "critical")] == []
    assert "Traceback" not in "\n".join(lines)
