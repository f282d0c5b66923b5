"""The cluster's shared state in Redis: live SFU workers and which worker hosts each room.

Keys (one Redis, not Redis Cluster: the scripts read keys they are not handed)::

    maeul:worker:<id>      JSON {id, boot, addresses, load, rooms, participants, cpu}, TTL WORKER_TTL_MS
    maeul:workers          set of worker ids ever registered (dead ones are pruned by placement)
    maeul:load             hash id -> load (participants + rooms), bumped by each placement
    maeul:room:<room>      hash {worker, boot, epoch, span}: the room's placement; ``worker`` is its
                           home, ``span`` the other workers it spans ("id:boot id:boot", cascade)
    maeul:member:<room>    hash participant -> "id:boot": the worker each participant was placed
                           on, while the room spans workers (docs/scale.md "Cascade")
    maeul:epoch            counter: every placement gets the next epoch
    maeul:recent:<id>:<boot>  sorted set room -> Redis time (ms) of its placement on that worker,
                           for the last RECENT_WINDOW_MS: rooms its CPU measure does not show yet
    maeul:joins:<id>:<boot>   sorted set JSON [room, participant] -> Redis time (ms) of its
                           admission on that worker, for the last RECENT_WINDOW_MS: likewise joins

Like LiveKit's RedisRouter (a ``nodes`` hash refreshed by each node's stats, a ``room_node_map``
hash; a node whose stats are stale is not available), except that placing a room is one Lua
script: two web processes placing the same room at once cannot put it on two workers, and each
placement carries a new epoch, so an answer about an older placement is recognisably stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

PREFIX = "maeul:"
WORKER_PREFIX = PREFIX + "worker:"
WORKERS = PREFIX + "workers"
LOAD = PREFIX + "load"
EPOCH = PREFIX + "epoch"
EVENTS_CHANNEL = PREFIX + "sfu-events"
#: A worker's record lives this long unless refreshed (it refreshes every HEARTBEAT_S).
WORKER_TTL_MS = 3000
HEARTBEAT_S = 1.0
#: Workers whose CPU use (fraction of one core) is within this of the least busy one count as
#: equally busy, and the count of participants + rooms decides between them. Each worker measures
#: at its own moment, so two idle workers never read exactly alike; 0.1 of a core is about five
#: participants' forwarding (docs/scale.md).
CPU_MARGIN = 0.1
RECENT_PREFIX = PREFIX + "recent:"
#: What a room just placed on a worker is assumed to cost (fraction of one core) until its worker's
#: CPU measure can show it, as Jicofo adds an assumed stress per endpoint placed on a bridge until
#: the bridge's own stats reflect it. A new room's size is unknown when it is placed; most rooms of
#: a county day are small meetings, and docs/scale.md's planning figure (0.5 % of a core per
#: subscriber stream: 0.31-0.42 measured by tests/bench/scale_bench.py, 0.49-0.66 by sfu_bench.py)
#: makes a meeting of 5 (each receives 4: 20 streams) 0.1 of a core. A town hall costs more
#: (0.4-0.6), which its measure shows a few seconds later. Equal to CPU_MARGIN: one charge moves a
#: worker about one margin, so a burst between workers of like CPU still alternates by count.
ROOM_COST_ESTIMATE = 0.1
#: How long a placement is charged. Not until the worker's next heartbeat: that one (at most a
#: second later) has not measured the room at all (its first peer connection is still in ICE and
#: DTLS, which take a second or two on a loaded machine), and the CPU meter averages over its
#: window (server/cluster/worker.py CPU_WINDOW_S, 5 s), so the room's media enters the measure
#: gradually over the next 5 s. Clearing at a heartbeat would be the count bump below, which each
#: heartbeat already resets. The window plus a second of set-up: after that the measure carries the
#: room, and the charge expires (a longer charge would count the room twice).
RECENT_WINDOW_MS = 6000
JOINS_PREFIX = PREFIX + "joins:"
#: What a participant just admitted on a worker is assumed to cost (fraction of one core) for
#: RECENT_WINDOW_MS, for the same reason as a new room: a town hall whose 30 halls join within
#: seconds is, in its worker's measure, still the meeting it was a few seconds before. Measured:
#: a town hall of 1 official + 30 halls, all publishing, with selective forwarding, costs 0.40-0.58
#: of a core (docs/bench-sfu.md, docs/scale.md), 0.013-0.019 per participant; ROOM_COST_ESTIMATE's
#: meeting of 5 is 0.02 per participant. A room's charge is the larger of ROOM_COST_ESTIMATE and
#: its recent joins' (the room estimate is a guess at a size that its joins then show), so a
#: meeting of 5 opened at once is charged 0.1, not 0.1 + 5 x 0.02.
JOIN_COST_ESTIMATE = 0.02


def connect(url: str) -> Redis:
    """The control plane's Redis client. Short timeouts, so a dead Redis is an error in seconds,
    never a hang; one immediate retry on a connection error, so the first call after a Redis
    restart reconnects instead of failing on a pooled connection that died with the old server."""
    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=5,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )


def worker_key(worker_id: str) -> str:
    return WORKER_PREFIX + worker_id


def room_key(room_id: str) -> str:
    return PREFIX + "room:" + room_id


def member_key(room_id: str) -> str:
    """The room's participant -> worker map, kept while the room spans workers (cascade)."""
    return PREFIX + "member:" + room_id


def pipe_id(placement: Placement, a: tuple[str, str], b: tuple[str, str]) -> str:
    """The id of the pipe between workers ``a`` and ``b`` (id, boot) of the room's placement:
    ``<room>~<epoch>~<id>.<boot>~<id>.<boot>``, the pair in a fixed order so both ends and every
    web process name it alike. The boots are in it: a worker restarted under its id gets new pipes,
    while its predecessor's may still be timing out at the other end. Ids past the SFU's 200
    characters (a long room id) become a digest of the same text."""
    first, second = sorted((a, b))
    text = f"{placement.room_id}~{placement.epoch}~{first[0]}.{first[1][:8]}~{second[0]}.{second[1][:8]}"
    if len(text) > 200:
        text = "pipe~" + hashlib.sha256(text.encode()).hexdigest()
    return text


def recent_key(worker_id: str, boot: str) -> str:
    """The rooms placed on this boot of the worker in the last RECENT_WINDOW_MS (the placement
    script builds the same name). Per boot: a restarted worker hosts none of its predecessor's."""
    return f"{RECENT_PREFIX}{worker_id}:{boot}"


def joins_key(worker_id: str, boot: str) -> str:
    """The participants admitted on this boot of the worker in the last RECENT_WINDOW_MS."""
    return f"{JOINS_PREFIX}{worker_id}:{boot}"


def rpc_key(worker_id: str, boot: str) -> str:
    """A worker's request queue. The boot id is in the name: a restarted worker with the same id
    never serves requests that were meant for its previous life."""
    return f"{PREFIX}rpc:{worker_id}:{boot}"


def reply_key(web_id: str) -> str:
    return f"{PREFIX}reply:{web_id}"


#: A web process's liveness record, refreshed every ``WEB_REFRESH_S``. A worker removes the
#: participants a web process admitted once that record has expired: nobody else would ever send
#: their leave (a page that had not set up media yet has no connection whose end would tell).
WEB_TTL_MS = 3000
WEB_REFRESH_S = 1.0
#: How long a worker must have seen no record of a web process before it takes it for dead (a
#: Redis restart empties Redis; the records are back within WEB_REFRESH_S).
WEB_GRACE_S = 3.0


def web_key(web_id: str) -> str:
    return f"{PREFIX}web:{web_id}"


#: How long a participant's handover record lives (``handover_key``): longer than any meeting.
#: Written at each admission and each takeover; a stale one hands nothing over, since the
#: worker checks that the admission it names is the participant's current one.
HANDOVER_TTL_S = 12 * 3600


def handover_key(room_id: str, participant_id: str) -> str:
    """Where a participant's admission is, for another web process to take it over when the one
    that admitted it dies (docs/scale.md "Handover"): the resume token's digest, the worker, its
    boot, the room's epoch and the admission's generation."""
    return f"{PREFIX}handover:{room_id}:{participant_id}"


#: A web process's live state (server/ops/live_share.py: its rooms and their participants, as
#: JSON), with the liveness record's TTL: a process that died drops out of /admin/system by itself.
LIVE_PREFIX = f"{PREFIX}live:"


def live_key(web_id: str) -> str:
    return f"{LIVE_PREFIX}{web_id}"


# KEYS: worker key, workers set, load hash, epoch counter.
# ARGV: id, boot, record JSON, ttl ms, load, then (room key, epoch, room id, home) for each room it
# hosts: home "1" for the room's home, "0" for a worker the room spans (cascade).
# Returns {1, rooms placed elsewhere meanwhile...}, or the boot id of the live worker that holds
# this id already.
#
# A home re-asserts a placement Redis lost (restart). A spanned worker re-adds itself to the span
# of the same epoch (it was taken for dead and came back, as a home re-asserts its placement) but
# never creates a placement: with the room's key gone it waits for the home.
_REGISTER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local boot = cjson.decode(cur).boot
  if boot ~= ARGV[2] then return boot end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', tonumber(ARGV[4]))
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
local me = ARGV[1] .. ':' .. ARGV[2]
local out = {1}
local i = 6
while ARGV[i] do
  local rkey = ARGV[i]
  local epoch = tonumber(ARGV[i + 1])
  local home = ARGV[i + 3] == '1'
  local placed = redis.call('HMGET', rkey, 'worker', 'boot', 'epoch', 'span')
  if not placed[1] then
    if home then
      redis.call('HSET', rkey, 'worker', ARGV[1], 'boot', ARGV[2], 'epoch', epoch)
      if tonumber(redis.call('GET', KEYS[4]) or '0') < epoch then redis.call('SET', KEYS[4], epoch) end
    end
  elseif home and placed[1] == ARGV[1] and placed[2] == ARGV[2] and tonumber(placed[3]) == epoch then
    -- still the home
  elseif not home and tonumber(placed[3]) == epoch and placed[1] .. ':' .. placed[2] ~= me then
    local found = false
    for entry in string.gmatch(placed[4] or '', '%S+') do
      if entry == me then found = true end
    end
    if not found then
      local span = placed[4] and placed[4] ~= '' and (placed[4] .. ' ' .. me) or me
      redis.call('HSET', rkey, 'span', span)
    end
  else
    table.insert(out, ARGV[i + 2])
  end
  i = i + 4
end
return out
"""

# KEYS: room key, workers set, load hash, epoch counter. ARGV: worker key prefix, excluded
# "<id>:<boot>" (a worker that did not answer) or "", CPU margin, recent-placements key prefix,
# assumed cost of a recent placement (fraction of a core), how long a placement or join counts
# (ms), the room id, recent-joins key prefix, assumed cost of a recent join, the joining
# participant (or ""), the room's member key, the span policy's CPU threshold (-1: off) and
# participant cap (0: off).
# Returns {worker, boot, epoch, record JSON, is home "1"/"0", span grew "1"/"0", the span's
# workers "id:boot"... (home first)}, or false when no worker is live.
#
# A new room goes to the live worker with the least CPU use first, as mediasoup applications and
# Jitsi place by measured load (Jicofo: the bridge with the lowest reported stress), not by head
# count: a room of 1 official and 30 halls costs far more than one of 2 (0.58 of a core against a
# few hundredths), so counting participants + rooms would put a second town hall next to the
# first on a worker that "has" fewer participants than one holding a dozen small meetings.
# Workers within the margin of the least busy, and workers with no measure yet (just started),
# are ranked by the count, which the script bumps at once, so a burst of new rooms between idle
# workers still spreads before the next heartbeat.
#
# A worker's measure trails a new room by seconds, so a measured worker is ranked by its measure
# plus an assumed cost for each room placed on it in the last window (Jicofo's recently added
# endpoints): a burst of rooms opened in one second fills the least busy worker only as far as
# those rooms would, then spreads. The count alone does not do this: each heartbeat resets it to
# what the worker hosts, and it decides only between workers within the margin. The placement
# times are Redis's own clock (TIME; scripts replicate their effects), not the web processes'.
#
# Cascade (docs/scale.md): with a span policy and a participant, a join to a room whose home is
# live goes to the first worker of the room (home, then its span in the order it grew) that is
# not full: its CPU (measure plus charges) at or above the threshold, or its count of the room's
# participants at the cap; a threshold of 0 makes every worker full at once (tests, benchmarks: a
# room spans as soon as there is a worker to span to). All full: the least busy live worker not in
# the room joins the span (the same choice as a new room's); none left: the worker with the
# fewest of the room's participants. The span grows under the room's epoch: the home's
# admissions stay valid, and a span of another epoch (an older placement's) is refused.
_PLACE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local cost, window, joincost = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[9])
local pid, mkey, spancpu, cap = ARGV[10], ARGV[11], tonumber(ARGV[12]), tonumber(ARGV[13])
-- What the worker's measure does not show yet: each room placed in the window at the larger of
-- the room estimate and its joins in the window, and the joins to older rooms at the join estimate.
local function charged(id, boot)
  local recent, joins = ARGV[4] .. id .. ':' .. boot, ARGV[8] .. id .. ':' .. boot
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', joins, '-inf', now - window)
  local per = {}
  for _, member in ipairs(redis.call('ZRANGE', joins, 0, -1)) do
    local room = cjson.decode(member)[1]
    per[room] = (per[room] or 0) + 1
  end
  local total = 0
  for _, room in ipairs(redis.call('ZRANGE', recent, 0, -1)) do
    total = total + math.max(cost, joincost * (per[room] or 0))
    per[room] = nil
  end
  for _, n in pairs(per) do total = total + joincost * n end
  return total
end
-- A worker's CPU use plus its charges (nil: not measured yet).
local function cpu_of(id, info)
  -- cjson decodes a JSON null as a sentinel, not nil: only a number is a measure.
  if type(info.cpu) ~= 'number' then return nil end
  return info.cpu + charged(id, info.boot)
end
-- The least busy live worker not in `skip` (ids), not excluded and not draining: {id, boot, record}
-- or nil.
local function pick(skip)
  local live, mincpu = {}, nil
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local rec = redis.call('GET', ARGV[1] .. id)
    if not rec then
      redis.call('SREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    else
      local info = cjson.decode(rec)
      if (id .. ':' .. info.boot) ~= ARGV[2] and not skip[id] and info.draining ~= true then
        local cpu = cpu_of(id, info)
        table.insert(live, {id, cpu, rec})
        if cpu and (mincpu == nil or cpu < mincpu) then mincpu = cpu end
      end
    end
  end
  local margin = tonumber(ARGV[3])
  local best, bestload, bestrec = nil, nil, nil
  for _, w in ipairs(live) do
    local id, cpu, rec = w[1], w[2], w[3]
    if cpu == nil or mincpu == nil or cpu <= mincpu + margin then
      local load = tonumber(redis.call('HGET', KEYS[3], id) or '0')
      if best == nil or load < bestload or (load == bestload and id < best) then
        best, bestload, bestrec = id, load, rec
      end
    end
  end
  if not best then return nil end
  local boot = cjson.decode(bestrec).boot
  redis.call('HINCRBY', KEYS[3], best, 1)
  -- Charged even on a worker with no measure yet: its first measure will not show the room either.
  local recent = ARGV[4] .. best .. ':' .. boot
  redis.call('ZADD', recent, now, ARGV[7])
  redis.call('PEXPIRE', recent, window)
  return {best, boot, bestrec}
end
-- {worker, boot, epoch, record, is home, span grew, every worker of the span as "id:boot"...}
local function answer(m, epoch, members, grew)
  if pid ~= '' then redis.call('HSET', mkey, pid, m[1] .. ':' .. m[2]) end
  local out = {m[1], m[2], tostring(epoch), m[3], m == members[1] and '1' or '0', grew and '1' or '0'}
  for _, x in ipairs(members) do table.insert(out, x[1] .. ':' .. x[2]) end
  return out
end
local cur = redis.call('HMGET', KEYS[1], 'worker', 'boot', 'epoch', 'span')
if cur[1] then
  local rec = redis.call('GET', ARGV[1] .. cur[1])
  if rec and cjson.decode(rec).boot == cur[2] and (cur[1] .. ':' .. cur[2]) ~= ARGV[2] then
    -- The home is live: the room's workers are the home and the live workers of its span.
    local members, kept, listed = {{cur[1], cur[2], rec}}, {}, 0
    for entry in string.gmatch(cur[4] or '', '%S+') do
      listed = listed + 1
      local id, boot = string.match(entry, '^(.*):([^:]*)$')
      local mrec = id and redis.call('GET', ARGV[1] .. id)
      if mrec and cjson.decode(mrec).boot == boot and entry ~= ARGV[2] then
        table.insert(members, {id, boot, mrec})
        table.insert(kept, entry)
      end
    end
    if #kept ~= listed then redis.call('HSET', KEYS[1], 'span', table.concat(kept, ' ')) end
    if pid == '' or (spancpu < 0 and cap <= 0) then return answer(members[1], cur[3], members, false) end
    local was = redis.call('HGET', mkey, pid)
    local counts = {}
    for _, where in ipairs(redis.call('HVALS', mkey)) do counts[where] = (counts[where] or 0) + 1 end
    for _, m in ipairs(members) do
      -- A participant joining again goes where it was (its earlier admission is replaced there).
      if was == m[1] .. ':' .. m[2] then return answer(m, cur[3], members, false) end
    end
    local function full(m)
      if spancpu == 0 or cjson.decode(m[3]).draining == true then return true end
      if cap > 0 and (counts[m[1] .. ':' .. m[2]] or 0) >= cap then return true end
      if spancpu > 0 then
        local cpu = cpu_of(m[1], cjson.decode(m[3]))
        if cpu and cpu >= spancpu then return true end
      end
      return false
    end
    -- The home first, then the span in the order it grew: a briefing fills one worker after another.
    for _, m in ipairs(members) do
      if not full(m) then return answer(m, cur[3], members, false) end
    end
    local skip = {}
    for _, m in ipairs(members) do skip[m[1]] = true end
    local added = pick(skip)
    if added then
      table.insert(kept, added[1] .. ':' .. added[2])
      redis.call('HSET', KEYS[1], 'span', table.concat(kept, ' '))
      table.insert(members, added)
      return answer(added, cur[3], members, true)
    end
    -- Every worker of the span is full and none is left to add: the one with the fewest of the
    -- room's participants.
    local least, fewest = nil, nil
    for _, m in ipairs(members) do
      local n = counts[m[1] .. ':' .. m[2]] or 0
      if least == nil or n < fewest then least, fewest = m, n end
    end
    return answer(least, cur[3], members, false)
  end
end
local best = pick({})
if not best then return false end
local epoch = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'worker', best[1], 'boot', best[2], 'epoch', epoch)
redis.call('HDEL', KEYS[1], 'span')
redis.call('DEL', mkey)  -- an earlier placement's members are not this one's
return answer(best, epoch, {best}, false)
"""

# KEYS: the worker's recent-joins key. ARGV: JSON [room, participant], how long a join counts (ms).
# One script, so the entry and the key's expiry are set together on Redis's clock (no
# check-then-act; the placement script prunes by the same clock). A participant admitted again
# within the window (a page rejoining) is one entry, its time the latest.
_CHARGE_JOIN = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS: room key, member key. ARGV: epoch. Forget the placement only if it is still that one.
_UNPLACE = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: room key, member key. ARGV: epoch, "id:boot" of a worker the room spans. Take that worker
# out of the span (it died or did not answer) if the placement is still that epoch, and its
# participants out of the member map.
_UNSPAN = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
local kept = {}
for entry in string.gmatch(redis.call('HGET', KEYS[1], 'span') or '', '%S+') do
  if entry ~= ARGV[2] then table.insert(kept, entry) end
end
redis.call('HSET', KEYS[1], 'span', table.concat(kept, ' '))
local members = redis.call('HGETALL', KEYS[2])
for i = 1, #members, 2 do
  if members[i + 1] == ARGV[2] then redis.call('HDEL', KEYS[2], members[i]) end
end
return 1
"""

# KEYS: member key. ARGV: participant, "id:boot". The participant left that worker (unless it has
# been placed elsewhere since).
_LEAVE_MEMBER = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    boot: str
    addresses: tuple[str, ...] = ()
    load: int = 0
    rooms: int = 0
    participants: int = 0
    #: CPU use over the last few seconds, as a fraction of one core (None: not measured yet).
    cpu: float | None = None
    #: Stopping (SIGTERM): the worker keeps its rooms until they empty or its drain ends, and is
    #: given no new room and no share of a spanning room's joins (docs/scale.md, "Draining").
    draining: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "boot": self.boot,
                "addresses": list(self.addresses),
                "load": self.load,
                "rooms": self.rooms,
                "participants": self.participants,
                "cpu": None if self.cpu is None else round(self.cpu, 4),
                "draining": self.draining,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerInfo:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            str(data["id"]),
            str(data["boot"]),
            tuple(data.get("addresses", ())),
            int(data.get("load", 0)),
            int(data.get("rooms", 0)),
            int(data.get("participants", 0)),
            None if data.get("cpu") is None else float(data["cpu"]),
            bool(data.get("draining", False)),
        )


@dataclass(frozen=True)
class SpanPolicy:
    """When a room's joins stop going to its home and the room spans workers (cascade,
    docs/scale.md). ``cpu``: a worker of the room takes no more of its joins once its CPU use
    (fraction of a core, measure plus charges) reaches this; 0 makes every worker full at once (a
    room spans as soon as another worker is live: tests and benchmarks); None: CPU does not count.
    ``cap``: a worker takes at most this many of the room's participants (None: no cap)."""

    cpu: float | None = None
    cap: int | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None and not 0 <= self.cpu <= 64:
            raise ValueError("span CPU threshold must be 0..64 cores")
        if self.cap is not None and self.cap < 1:
            raise ValueError("span participant cap must be at least 1")

    @property
    def active(self) -> bool:
        return self.cpu is not None or self.cap is not None


@dataclass(frozen=True)
class Placement:
    """Where a request about the room goes: the worker (id, boot) and the room's epoch. ``home``:
    that worker is the room's home (the one its key names), not a worker it spans to. ``span``
    (every worker of the room, home first) and ``grew`` (this placement added ``worker`` to the
    span) are what the placement found; they are not part of the placement's identity."""

    room_id: str
    worker: str
    boot: str
    epoch: int
    home: bool = True
    span: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    grew: bool = field(default=False, compare=False)

    @property
    def queue(self) -> str:
        return rpc_key(self.worker, self.boot)

    @property
    def member(self) -> str:
        return f"{self.worker}:{self.boot}"


def floor_key(room_id: str) -> str:
    """The chair's floor of a meeting's room (``Floor.durable_json``), for the web process that
    takes the room over when the one holding it dies; with :data:`HANDOVER_TTL_S`."""
    return f"{PREFIX}floor:{room_id}"


@dataclass(frozen=True)
class HandoverRecord:
    """What :func:`handover_key` holds (JSON)."""

    digest: str  # sha256 of the page's resume token, hex
    placement: Placement
    gen: int

    def to_json(self) -> str:
        p = self.placement
        return json.dumps(
            {
                "digest": self.digest,
                "worker": p.worker,
                "boot": p.boot,
                "epoch": p.epoch,
                "home": p.home,
                "gen": self.gen,
            }
        )

    @classmethod
    def from_json(cls, room_id: str, raw: str | bytes) -> HandoverRecord | None:
        """The record, or None when it is not one (written by another version, or damaged)."""
        try:
            d = json.loads(raw)
            placement = Placement(room_id, str(d["worker"]), str(d["boot"]), int(d["epoch"]), bool(d["home"]))
            return cls(str(d["digest"]), placement, int(d["gen"]))
        except (ValueError, TypeError, KeyError):
            return None


def token_digest(token: str) -> str:
    """A resume token as Redis keeps it: a digest, so reading Redis does not give a page's token."""
    return hashlib.sha256(token.encode()).hexdigest()


class WorkerIdTaken(Exception):
    """Another live worker holds this id (a different boot id, and its record has not expired)."""

    def __init__(self, worker_id: str, boot: str) -> None:
        super().__init__(
            f"SFU worker id {worker_id} is already registered by a live worker (boot {boot}); "
            f"stop that worker or start this one with another --worker-id "
            f"(a dead worker's id is free again {WORKER_TTL_MS / 1000:g} s after it stopped)"
        )
        self.worker_id = worker_id
        self.other_boot = boot


class Registry:
    """The scripts above, on one Redis client (redis-py's own connection pool)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._register = redis.register_script(_REGISTER)
        self._place = redis.register_script(_PLACE)
        self._unplace = redis.register_script(_UNPLACE)
        self._charge_join = redis.register_script(_CHARGE_JOIN)
        self._unspan = redis.register_script(_UNSPAN)
        self._leave_member = redis.register_script(_LEAVE_MEMBER)

    async def register(
        self, info: WorkerInfo, rooms: dict[str, int], *, spanned: Iterable[str] = ()
    ) -> list[str]:
        """Register or refresh ``info`` with a short TTL, and re-assert the placement of the rooms
        it hosts (after a Redis restart the keys are gone, while the rooms carry on). ``spanned``:
        those of ``rooms`` this worker is not the home of (cascade): it stays in their span.
        Returns the rooms that were placed elsewhere meanwhile (this worker was taken for dead):
        stale here. Raises :class:`WorkerIdTaken` if another live worker holds the id."""
        others = set(spanned)
        quads: list[str | int] = []
        for room_id, epoch in rooms.items():
            quads += [room_key(room_id), epoch, room_id, "0" if room_id in others else "1"]
        result = await self._register(
            keys=[worker_key(info.id), WORKERS, LOAD, EPOCH],
            args=[info.id, info.boot, info.to_json(), WORKER_TTL_MS, info.load, *quads],
        )
        if not isinstance(result, list) or not result or result[0] != 1:
            raise WorkerIdTaken(info.id, _text(result))
        return [_text(room) for room in result[1:]]

    async def unregister(self, info: WorkerInfo) -> None:
        current = await self.redis.get(worker_key(info.id))
        if current is not None and WorkerInfo.from_json(current).boot == info.boot:
            await self.redis.delete(worker_key(info.id))

    async def place(
        self,
        room_id: str,
        *,
        exclude: tuple[str, str] | None = None,
        participant: str = "",
        span: SpanPolicy | None = None,
    ) -> Placement | None:
        """The room's live placement, or a new one on the least-loaded live worker (by CPU, then
        by count; None: no worker is live). ``exclude``: (id, boot) of a worker that did not
        answer. With a ``participant`` joining and an active ``span`` policy, the worker of the
        room that takes the join, the room's span grown by one if all its workers are full
        (see the script)."""
        policy = span if span is not None else SpanPolicy()
        result = await self._place(
            keys=[room_key(room_id), WORKERS, LOAD, EPOCH],
            args=[
                WORKER_PREFIX,
                f"{exclude[0]}:{exclude[1]}" if exclude else "",
                CPU_MARGIN,
                RECENT_PREFIX,
                ROOM_COST_ESTIMATE,
                RECENT_WINDOW_MS,
                room_id,
                JOINS_PREFIX,
                JOIN_COST_ESTIMATE,
                participant,
                member_key(room_id),
                -1 if policy.cpu is None else policy.cpu,
                policy.cap or 0,
            ],
        )
        if not result:
            return None
        worker, boot, epoch = (_text(v) for v in result[:3])
        home, grew = _text(result[4]) == "1", _text(result[5]) == "1"
        members = tuple(_member(_text(m)) for m in result[6:])
        return Placement(room_id, worker, boot, int(epoch), home, members, grew)

    async def charge_join(self, placement: Placement, participant_id: str) -> None:
        """Charge the placement's worker JOIN_COST_ESTIMATE for a participant just admitted there,
        for RECENT_WINDOW_MS (placement ranks the worker by it until its measure shows the join)."""
        member = json.dumps([placement.room_id, participant_id], ensure_ascii=False)
        await self._charge_join(
            keys=[joins_key(placement.worker, placement.boot)], args=[member, RECENT_WINDOW_MS]
        )

    async def unplace(self, placement: Placement) -> None:
        """Forget the placement (its worker died or did not answer), if it is still the room's:
        a home's, the whole room (the next join places it again, with a new epoch); a spanned
        worker's, that worker's part of the span."""
        keys = [room_key(placement.room_id), member_key(placement.room_id)]
        if placement.home:
            await self._unplace(keys=keys, args=[placement.epoch])
        else:
            await self._unspan(keys=keys, args=[placement.epoch, placement.member])

    async def claim_pipe_repair(self, pipe: str, seconds: float) -> bool:
        """Whether this caller may repair ``pipe`` (cascade: a span grown by a web process that died
        before opening its pipes) for the next ``seconds``: one web process at a time, or two
        would close each other's new ends."""
        return bool(await self.redis.set(f"{PREFIX}pipe-repair:{pipe}", "1", nx=True, px=int(seconds * 1000)))

    async def leave_member(self, placement: Placement, participant_id: str) -> None:
        """The participant placed by ``placement`` left: it no longer counts against its worker's
        share of the room (SpanPolicy.cap)."""
        keys = [member_key(placement.room_id)]
        await self._leave_member(keys=keys, args=[participant_id, placement.member])

    async def placement_of(self, room_id: str) -> Placement | None:
        """The room's home placement, with its span (None: not placed)."""
        fields = ["worker", "boot", "epoch", "span"]
        worker, boot, epoch, span = await self.redis.hmget(room_key(room_id), fields)
        if worker is None or boot is None or epoch is None:
            return None
        home = (_text(worker), _text(boot))
        members = (home, *(_member(m) for m in _text(span or b"").split()))
        return Placement(room_id, home[0], home[1], int(epoch), True, members)

    async def web_alive(self, web_id: str) -> None:
        await self.redis.set(web_key(web_id), "1", px=WEB_TTL_MS)

    async def keep_handover(self, record: HandoverRecord, participant_id: str) -> None:
        key = handover_key(record.placement.room_id, participant_id)
        await self.redis.set(key, record.to_json(), ex=HANDOVER_TTL_S)

    async def handover(self, room_id: str, participant_id: str) -> HandoverRecord | None:
        raw = await self.redis.get(handover_key(room_id, participant_id))
        return None if raw is None else HandoverRecord.from_json(room_id, raw)

    async def keep_floor(self, room_id: str, state: str) -> None:
        await self.redis.set(floor_key(room_id), state, ex=HANDOVER_TTL_S)

    async def kept_floor(self, room_id: str) -> str | bytes | None:
        raw: str | bytes | None = await self.redis.get(floor_key(room_id))
        return raw

    async def web_gone(self, web_id: str) -> None:
        await self.redis.delete(web_key(web_id))

    async def share_live(self, web_id: str, state: str) -> None:
        """Publish ``web_id``'s live state (JSON) for the other web processes' system pages."""
        await self.redis.set(live_key(web_id), state, px=WEB_TTL_MS)

    async def unshare_live(self, web_id: str) -> None:
        await self.redis.delete(live_key(web_id))

    async def shared_live(self) -> dict[str, str]:
        """The live state (JSON) every web process shared and that has not expired, by web id."""
        keys = [key async for key in self.redis.scan_iter(match=f"{LIVE_PREFIX}*", count=100)]
        if not keys:
            return {}
        values = await self.redis.mget(keys)
        return {
            _text(key)[len(LIVE_PREFIX) :]: _text(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    async def dead_webs(self, web_ids: Iterable[str]) -> set[str]:
        """Those of ``web_ids`` whose liveness record has expired (or was removed at their stop)."""
        ids = sorted(set(web_ids))
        if not ids:
            return set()
        values = await self.redis.mget([web_key(i) for i in ids])
        return {web_id for web_id, value in zip(ids, values, strict=True) if value is None}

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        raw = await self.redis.get(worker_key(worker_id))
        return None if raw is None else WorkerInfo.from_json(raw)

    async def live_workers(self) -> list[WorkerInfo]:
        ids = sorted(_text(m) for m in await self.redis.smembers(WORKERS))
        found = []
        for worker_id in ids:
            info = await self.worker(worker_id)
            if info is not None:
                found.append(info)
        return found


def _member(text: str) -> tuple[str, str]:
    """ "id:boot" -> (id, boot) (worker ids may hold a colon; boots are hex)."""
    worker, _, boot = text.rpartition(":")
    return worker, boot


def _text(value: object) -> str:
    """A Redis reply as text (the client is made without decode_responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)
