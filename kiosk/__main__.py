"""``python -m kiosk``: the village-hall side of Maeul.

python -m kiosk enroll --server https://maeul.gangjin.example --code ABCD-EFGH-JKMN-PQRS
python -m kiosk run [--dry-run]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
from pathlib import Path

from kiosk import client, state
from kiosk.agent import BrowserSupervisor, SupervisorPolicy, heartbeat_loop
from kiosk.browser import BrowserSpec, launch

log = logging.getLogger("kiosk")


def _server_url(raw: str) -> str:
    url = raw.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SystemExit("--server must start with https:// (or http:// on a test network)")
    return url


def cmd_enroll(args: argparse.Namespace) -> int:
    server_url = _server_url(args.server)
    try:
        body = asyncio.run(client.enroll(server_url, args.code))
    except client.ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kiosk = body["kiosk"]
    directory = state.state_dir(args.state_dir)
    state.save(
        directory,
        state.AgentState(
            server_url=server_url, kiosk_id=kiosk["id"], label=kiosk["label"], village=kiosk["village"]
        ),
        body["token"],
    )
    print(
        f"enrolled: kiosk {kiosk['id']} ({kiosk['village']}, {kiosk['label']}); token stored in {directory}"
    )
    return 0


def browser_spec(args: argparse.Namespace, agent_state: state.AgentState, directory: Path) -> BrowserSpec:
    executable = args.chromium or shutil.which("chromium") or "/usr/bin/chromium"
    return BrowserSpec(
        executable=executable,
        server_url=agent_state.server_url,
        user_data_dir=directory / "chromium",
        extra_flags=tuple(args.browser_flag or ()),
    )


def cmd_run(args: argparse.Namespace) -> int:
    directory = state.state_dir(args.state_dir)
    try:
        agent_state, token = state.load(directory)
    except (FileNotFoundError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    spec = browser_spec(args, agent_state, directory)
    if args.dry_run:
        print("would launch:", " ".join(spec.command()))
        print(f"then open {agent_state.server_url}{spec.page_path} signed in as kiosk {agent_state.kiosk_id}")
        print(f"and send a heartbeat every {args.heartbeat_interval:g} s to {agent_state.server_url}")
        return 0
    return asyncio.run(_run(spec, agent_state, token, directory, args.heartbeat_interval))


async def _run(
    spec: BrowserSpec, agent_state: state.AgentState, token: str, directory: Path, interval: float
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    supervisor = BrowserSupervisor(lambda: launch(spec, token), SupervisorPolicy())
    await asyncio.gather(
        supervisor.run(stop),
        heartbeat_loop(agent_state.server_url, token, supervisor, directory, stop, interval),
    )
    return 0


def cmd_headless(args: argparse.Namespace) -> int:
    from kiosk.headless import HeadlessKiosk
    from kiosk.media import open_source
    from kiosk.speaker import SpeakerMixer

    directory = state.state_dir(args.state_dir)
    try:
        agent_state, token = state.load(directory)
    except (FileNotFoundError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        kiosk = HeadlessKiosk(
            agent_state.server_url,
            token,
            lambda: open_source(args.source),
            host_addresses=args.host_address or (),
            speaker=None if args.speaker == "none" else (lambda: SpeakerMixer(args.speaker)),
        )
        await kiosk.run(stop)
        return 0

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk", description="Maeul village-hall kiosk")
    parser.add_argument("--state-dir", help="where the token lives (default /var/lib/maeul-kiosk)")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="exchange a one-time enrollment code for this device's token")
    enroll.add_argument("--server", required=True)
    enroll.add_argument("--code", required=True)
    enroll.set_defaults(func=cmd_enroll)
    run = sub.add_parser("run", help="keep Chromium on the kiosk page and report health")
    run.add_argument("--dry-run", action="store_true", help="print what would be launched, then exit")
    run.add_argument("--chromium", help="Chromium executable (default: chromium on PATH)")
    run.add_argument("--browser-flag", action="append", help="extra Chromium flag (repeatable)")
    run.add_argument("--heartbeat-interval", type=float, default=10.0)
    run.set_defaults(func=cmd_run)
    headless = sub.add_parser("headless", help="join the village's meetings without a browser (aiortc)")
    headless.add_argument("--source", default="testsrc", help="testsrc, or a v4l2 camera such as /dev/video0")
    headless.add_argument(
        "--host-address", action="append", help="local address to gather ICE candidates on (repeatable)"
    )
    headless.add_argument(
        "--speaker", default="default", help="ALSA device for the voices (default), a .wav file, or none"
    )
    headless.set_defaults(func=cmd_headless)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
