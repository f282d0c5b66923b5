"""Can this machine's Chromium encode the official page's three simulcast layers? (issue #18: the
top layer is 1280x720 where the encoders keep up, at least 960x540.)

Headless Chromium captures its fake camera at ``--width`` x ``--height`` (20 fps) and sends it as
q/h/f (the room page's ``SIMULCAST_ENCODINGS``, web/static/js/room/room.js) to a second peer
connection in the same page, over loopback. The answer is edited to take the three rids (the
receiver decodes only one; the point is the sender). Chromium's own bandwidth estimate
(transport-cc on loopback) leaves every layer its full bitrate, so what limits a layer here is
the encoder: ``qualityLimitationReason`` ``cpu`` and a lower ``framesPerSecond``. In a meeting
the SFU's REMB caps the publisher instead (docs/sfu.md, "Simulcast").

    # in /work/main
    unshare -rn sh -c 'ip link set lo up && .venv/bin/python tests/bench/simulcast_encoder_bench.py'

Prints, per layer, the median over the last ``--window`` seconds: ``RESULT encoder_<rid>_width=``,
``RESULT encoder_<rid>_fps=`` and ``RESULT encoder_<rid>_cpu_limited_pct=`` (share of samples
with ``qualityLimitationReason`` ``cpu``), and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bench.simulcast_bench import SIMULCAST_ENCODINGS  # noqa: E402
from tests.sfu.browser_publisher import chromium_page  # noqa: E402
from tests.sfu.sdp_corpus.capture import blank_page  # noqa: E402

RIDS = ("q", "h", "f")

#: [width, height, seconds] -> JSON list of one-second samples {rid: [width, fps, reason]}.
LOOPBACK_JS = (
    """
async ([width, height, seconds]) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: {ideal: width}, height: {ideal: height}}});
  const sender = new RTCPeerConnection(), receiver = new RTCPeerConnection();
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  sender.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly', sendEncodings: """
    + SIMULCAST_ENCODINGS
    + """});
  const offer = await sender.createOffer();
  await sender.setLocalDescription(offer);
  const lines = offer.sdp.split('\\r\\n');
  // the receiver is offered one plain stream; the sender is answered that all rids are taken
  const plain = lines.filter((l) => !l.startsWith('a=rid:') && !l.startsWith('a=simulcast:'));
  await receiver.setRemoteDescription({type: 'offer', sdp: plain.join('\\r\\n')});
  const answer = await receiver.createAnswer();
  await receiver.setLocalDescription(answer);
  let sdp = answer.sdp.trimEnd() + '\\r\\n';
  const ridExt = lines.find((l) => l.includes('urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id'));
  if (ridExt && !sdp.includes('rtp-stream-id')) sdp += ridExt + '\\r\\n';
  sdp += 'a=rid:q recv\\r\\na=rid:h recv\\r\\na=rid:f recv\\r\\na=simulcast:recv q;h;f\\r\\n';
  await sender.setRemoteDescription({type: 'answer', sdp});
  const samples = [];
  for (let i = 0; i < seconds; i += 1) {
    await new Promise((done) => setTimeout(done, 1000));
    const sample = {};
    (await sender.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.rid) {
        sample[s.rid] = [s.frameWidth || 0, s.framesPerSecond || 0, s.qualityLimitationReason];
      }
    });
    samples.push(sample);
  }
  stream.getTracks().forEach((t) => t.stop());
  return JSON.stringify(samples);
}
"""
)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--settle", type=int, default=10, help="seconds before measuring")
    parser.add_argument("--window", type=int, default=20, help="measured seconds")
    args = parser.parse_args()
    async with blank_page() as url, chromium_page(url) as page:
        samples = json.loads(
            await page.evaluate(LOOPBACK_JS, [args.width, args.height, args.settle + args.window])
        )[args.settle :]
    print(f"# camera {args.width}x{args.height}, load average {os.getloadavg()}")
    for rid in RIDS:
        rows = [s[rid] for s in samples if rid in s]
        if not rows:
            print(f"RESULT encoder_{rid}_fps=0")
            continue
        print(f"RESULT encoder_{rid}_width={statistics.median(r[0] for r in rows):.0f}")
        print(f"RESULT encoder_{rid}_fps={statistics.median(r[1] for r in rows):.1f}")
        cpu = sum(1 for r in rows if r[2] == "cpu") * 100 / len(rows)
        print(f"RESULT encoder_{rid}_cpu_limited_pct={cpu:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
