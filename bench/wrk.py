"""wrk as the load generator: pre-signed requests, each sent once, for a fixed time.

wrk (C, epoll) costs a fraction of the CPU per request that a Python client
does, so at saturation the receiver, not the generator, sets the pace. The
Debian package is wrk 4.1 (no wrk2 ``-R``): it runs closed-loop, each
connection sending its next request when the previous answer arrived.

How a run stays exact (every request a distinct event, every stored row
answered): the requests are written to one file per wrk thread
(``<prefix>.<thread>``, each request as ``<length>\\n<raw HTTP/1.1 request>``),
so the threads never share an event, and the Lua script sends each at most
once. When the pool is used up or the deadline has passed (``duration``
seconds after wrk was started, as an absolute CLOCK_MONOTONIC time, so a slow
start-up shortens the window but never eats the tail), ``delay()`` parks the
connection; what is in flight gets answered, and each thread stops once its
last answer is in. wrk runs for ``duration + TAIL_SECONDS``, so it has counted
every answer. Counters (answers by status, accepted, duplicate) and the
first-send and last-answer times (CLOCK_MONOTONIC via LuaJIT's FFI) come back
as one JSON line; latency percentiles are wrk's own histogram.
"""
from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from testkit.load import Signer, WebhookRequest

TAIL_SECONDS = 6
"""wrk runs this much longer than the sending window, so every request in flight gets its answer.
Each thread stops as soon as it is done, so the tail is idle time only."""
MARKER = "PAYHOOKS_WRK "
IDS_MARKER = "PAYHOOKS_IDS "

_COMMON_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } payhooks_timespec;
int clock_gettime(int clk_id, payhooks_timespec *tp);
]]
local ts = ffi.new("payhooks_timespec")
function payhooks_now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads, thread_count = {}, 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local COUNTERS = {"sent", "answered", "accepted", "duplicate", "other_200", "filler"}

function done(summary, latency, requests)
  local t = {sent = 0, answered = 0, accepted = 0, duplicate = 0, other_200 = 0, filler = 0}
  local statuses, first_at, last_at = {}, nil, nil
  for _, thread in ipairs(threads) do
    for _, name in ipairs(COUNTERS) do t[name] = t[name] + (thread:get(name) or 0) end
    local f, l = thread:get("first_at") or 0, thread:get("last_at") or 0
    if f > 0 and (first_at == nil or f < first_at) then first_at = f end
    if l > 0 and (last_at == nil or l > last_at) then last_at = l end
    for status, n in pairs(thread:get("statuses") or {}) do statuses[status] = (statuses[status] or 0) + n end
  end
  local all_ids = {}
  for _, thread in ipairs(threads) do
    for _, id in ipairs(thread:get("ids") or {}) do all_ids[#all_ids + 1] = id end
  end
  if #all_ids > 0 then io.write("PAYHOOKS_IDS " .. table.concat(all_ids, ",") .. "\n") end
  local parts = {}
  for status, n in pairs(statuses) do table.insert(parts, string.format('"%s":%d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    'PAYHOOKS_WRK {"sent":%d,"answered":%d,"accepted":%d,"duplicate":%d,"other_200":%d,"filler":%d,' ..
    '"window_s":%.6f,"first_at":%.6f,"last_at":%.6f,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
    t.sent, t.answered, t.accepted, t.duplicate, t.other_200, t.filler,
    (first_at and last_at) and (last_at - first_at) or (summary.duration / 1e6), first_at or 0, last_at or 0,
    table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""

_POOL_LUA = _COMMON_LUA + r"""
local IDLE_MS = 3600000
local pool, next_index, deadline, started = {}, 1, 0, false
FILLER = "GET /healthz HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. (wrk.port or "80") .. "\r\n\r\n"
sent, answered, accepted, duplicate, other_200, first_at, last_at, filler = 0, 0, 0, 0, 0, 0, 0, 0
statuses = {}

ids = {}
local collect_ids = false

function init(args)
  deadline = tonumber(args[2])  -- CLOCK_MONOTONIC seconds, set by Python just before starting wrk
  collect_ids = args[3] == "ids"  -- keep the "id" of every answer (bench.duplicates checks them)
  interval = tonumber(args[4] or "0") or 0  -- paced: seconds between this thread's sends (0: closed loop)
  local file = assert(io.open(args[1] .. "." .. thread_index, "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = string.find(data, "\n", pos, true)
    local length = tonumber(string.sub(data, pos, newline - 1))
    pool[#pool + 1] = string.sub(data, newline + 1, newline + length)
    pos = newline + length + 1
  end
end

-- wrk calls delay() before every request of a connection (the first one included) and
-- request() when that delay has passed; other connections may send in between, so delay()
-- reserves the request the connection will send, and parks it when none is left.
-- Paced (interval > 0): the thread's sends are due every `interval` seconds from the start, whichever
-- connection is free takes the next slot, and a slot already past goes out at once.
local reserved, next_due = 0, 0
function delay()
  local now = payhooks_now()
  if not started then
    started = true
    first_at = now
    next_due = now
  end
  if reserved >= #pool or now >= deadline then return IDLE_MS end
  reserved = reserved + 1
  if interval <= 0 then return 0 end
  local due = next_due
  next_due = next_due + interval
  if due <= now then return 0 end
  return math.ceil((due - now) * 1000)
end

function request()
  if not started then
    return pool[1]  -- wrk's start-up check of the script: parsed, never sent
  end
  if next_index > reserved then
    filler = filler + 1  -- a reconnect resends without delay(): never an event twice
    return FILLER
  end
  local raw = pool[next_index]
  next_index = next_index + 1
  sent = sent + 1
  return raw
end

function response(status, headers, body)
  if string.find(body, '"ok"', 1, true) then return end  -- the answer to a FILLER
  answered = answered + 1
  last_at = payhooks_now()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if collect_ids then ids[#ids + 1] = tonumber(string.match(body, '"id":(%d+)') or "0") end
  if status == 200 then
    if string.find(body, '"accepted"', 1, true) then accepted = accepted + 1
    elseif string.find(body, '"duplicate"', 1, true) then duplicate = duplicate + 1
    else other_200 = other_200 + 1 end
  end
  -- done sending and nothing in flight: stop this thread, so no parked connection outlives the
  -- receiver's keep-alive (its close would count as a read error)
  if answered == sent and sent == reserved and (reserved >= #pool or last_at >= deadline) then
    wrk.thread:stop()
  end
end
"""

_PLAIN_LUA = _COMMON_LUA + r"""
sent, answered, accepted, duplicate, other_200, first_at, last_at = 0, 0, 0, 0, 0, 0, 0
statuses = {}

function response(status, headers, body)
  if first_at == 0 then first_at = payhooks_now() end
  answered = answered + 1
  last_at = payhooks_now()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end
"""


@dataclass
class WrkResult:
    tool: str
    sent: int
    answered: int
    accepted: int
    duplicate: int
    other_200: int
    window_s: float
    """First request sent → last answer received (wrk's whole run for a plain GET)."""
    statuses: dict[str, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    first_at: float = 0.0
    """time.monotonic() (CLOCK_MONOTONIC) of the first request sent (plain GET: the first answer)."""
    last_at: float = 0.0
    pool_size: int = 0
    filler: int = 0
    """GET /healthz sent in place of an event when a reconnect asked for a request it had not reserved."""
    wrk_cpu_seconds: float = 0.0
    ids: list[int] = field(default_factory=list)
    """With ``collect_ids``: the id each answer named, in no particular order."""

    @property
    def unanswered(self) -> int:
        """Requests sent and never answered: wrk stopped first (only the pool script counts sends)."""
        return max(0, self.sent - self.answered) if self.sent else 0

    @property
    def answers(self) -> dict[str, int]:
        """Answer label → count, labelled as testkit/load.py labels them (``200 accepted``, ``200 duplicate``,
        ``200 other``; a plain GET's ``200``; ``503``, ``error read``, …), and the requests never answered."""
        answers = Counter(self.statuses)
        if self.accepted or self.duplicate or self.other_200:
            answers.pop("200", None)
            answers.update({"200 accepted": self.accepted, "200 duplicate": self.duplicate,
                            "200 other": self.other_200})
        answers.update({f"error {kind}": n for kind, n in self.errors.items() if kind != "status"})
        answers["unanswered (wrk stopped first)"] = self.unanswered
        return {label: n for label, n in answers.items() if n}

    @property
    def pool_used_up(self) -> bool:
        return bool(self.pool_size) and self.sent >= self.pool_size


def available() -> str | None:
    """The path of the wrk binary, or None."""
    return shutil.which("wrk")


def send_pool(base_url: str, requests: Sequence[WebhookRequest], *, signer: Signer, name: str, threads: int,
              connections: int, duration_s: float, workdir: Path, on_start: Callable[[int], None] | None = None,
              collect_ids: bool = False, rate_per_s: float | None = None) -> WrkResult:
    """Sign ``requests`` now, deal them round-robin into ``<workdir>/<name>-pool.<thread>`` files (each
    request as its bytes on the wire, HTTP/1.1 keep-alive), send them for at most ``duration_s`` seconds,
    then delete the files.

    ``collect_ids``: ``result.ids`` holds the ``"id"`` of every answer (0 when it had none).
    ``rate_per_s``: paced sends (each thread ``rate / threads`` per second, evenly spaced) instead of
    closed loop; a connection still waits for its answer, so the rate holds while
    ``connections / rate`` exceeds the latency."""
    signer.sign_all(requests)
    prefix, host = workdir / f"{name}-pool", urlsplit(base_url).netloc
    with ExitStack() as stack:
        files = [stack.enter_context(open(f"{prefix}.{n}", "wb")) for n in range(threads)]
        for index, request in enumerate(requests):
            headers = {"Host": host, **(request.headers or {}), "Content-Length": str(len(request.body))}
            head = f"POST {request.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            data = head.encode("latin-1") + b"\r\n" + request.body
            files[index % threads].write(b"%d\n" % len(data) + data)
    script = workdir / "pool.lua"
    script.write_text(_POOL_LUA)
    deadline = time.monotonic() + duration_s  # wrk's own clock starts later: the tail stays whole
    try:
        result = _run(base_url, script=script, args=[str(prefix), f"{deadline:.6f}", "ids" if collect_ids else "",
                                                      f"{threads / rate_per_s:.6f}" if rate_per_s else "0"],
                      seconds=int(duration_s + 0.999) + TAIL_SECONDS, threads=threads, connections=connections,
                      on_start=on_start)
    finally:
        for index in range(threads):
            Path(f"{prefix}.{index}").unlink(missing_ok=True)
    result.pool_size = len(requests)
    return result


def run_get(url: str, *, duration_s: float, threads: int, connections: int, workdir: Path,
            on_start: Callable[[int], None] | None = None) -> WrkResult:
    """GET ``url`` as fast as it answers for ``duration_s`` seconds (the /healthz baseline)."""
    script = workdir / "get.lua"
    script.write_text(_PLAIN_LUA)
    return _run(url, script=script, args=[], seconds=int(duration_s + 0.999), threads=threads,
                connections=connections, on_start=on_start)


def _run(url: str, *, script: Path, args: list[str], seconds: int, threads: int, connections: int,
         on_start: Callable[[int], None] | None) -> WrkResult:
    binary = available()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
            "-s", str(script), url, "--", *args]
    before = _children_cpu_seconds()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    if on_start is not None:
        on_start(process.pid)
    try:
        stdout, stderr = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise RuntimeError(f"wrk did not finish: {stderr[-2000:]}") from None
    line = next((x for x in stdout.splitlines() if x.startswith(MARKER)), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk exited {process.returncode}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    data = json.loads(line.removeprefix(MARKER))
    return WrkResult(tool=f"wrk -t{threads} -c{connections} (Lua: {script.name})", **data,
                     wrk_cpu_seconds=_children_cpu_seconds() - before, ids=_ids(stdout))


def _ids(stdout: str) -> list[int]:
    line = next((x for x in stdout.splitlines() if x.startswith(IDS_MARKER)), "")
    return [int(i) for i in line.removeprefix(IDS_MARKER).split(",") if i]


def _children_cpu_seconds() -> float:
    """CPU seconds of every child reaped so far (wrk's own, as the difference around its run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
