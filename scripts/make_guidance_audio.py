#!/usr/bin/env python3
"""Build the kiosk's pre-recorded spoken guidance (for kiosks whose browser has no Korean voice).

Run by a developer when a phrase changes (needs Debian's espeak-ng); the Opus files it writes
under web/static/audio/guidance/ are committed, so neither servers nor kiosks need a TTS engine.

    .venv/bin/python scripts/make_guidance_audio.py
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "web" / "static" / "audio" / "guidance"

# key -> (Korean, English). The key is what pages ask for (data-guidance="home").
PHRASES = {
    "home": (
        "안녕하세요. 원하시는 것을 화면에서 눌러 주세요. "
        "회의 참여, 군청에 요청하기, 내 요청 확인, 군청과 영상통화가 있습니다.",
        "Hello. Touch what you would like to do: "
        "join the meeting, ask the county, check my request, or call the county office.",
    ),
    "still_there": (
        "아직 계신가요? 계속하시려면 화면을 눌러 주세요.",
        "Are you still there? Touch the screen to continue.",
    ),
    "goodbye": ("처음 화면으로 돌아갑니다.", "Going back to the first screen."),
}


def synthesize(text: str, voice: str) -> bytes:
    # -s 140: slower than the default 175 words per minute, for older listeners.
    return subprocess.run(  # noqa: S603 — fixed arguments, our own phrases
        ["espeak-ng", "-v", voice, "-s", "140", "--stdout", text],  # noqa: S607 — Debian's espeak-ng on PATH
        check=True,
        capture_output=True,
    ).stdout


def to_opus(wav: bytes, target: Path) -> None:
    with av.open(io.BytesIO(wav)) as source, av.open(str(target), "w", format="ogg") as sink:
        stream = sink.add_stream("libopus", rate=48000)
        stream.bit_rate = 24000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for frame in source.decode(audio=0):
            for out in resampler.resample(frame):
                for packet in stream.encode(out):
                    sink.mux(packet)
        for out in resampler.resample(None):
            for packet in stream.encode(out):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)


def ring_wav() -> bytes:
    """A phone-like ring for officials' pages: 0.8 s of 440+480 Hz, then 1.2 s of silence."""
    import math
    import struct
    import wave

    rate = 48000
    samples = [
        int(6000 * (math.sin(2 * math.pi * 440 * i / rate) + math.sin(2 * math.pi * 480 * i / rate)))
        if i < int(0.8 * rate)
        else 0
        for i in range(2 * rate)
    ]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buffer.getvalue()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    to_opus(ring_wav(), OUT / "ring.ogg")
    manifest = {}
    for key, (korean, english) in PHRASES.items():
        for lang, text, voice in (("ko", korean, "ko"), ("en", english, "en-us")):
            name = f"{key}.{lang}.ogg"
            to_opus(synthesize(text, voice), OUT / name)
            manifest.setdefault(key, {})[lang] = {"file": name, "text": text}
    (OUT / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(manifest) * 2} clips to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
