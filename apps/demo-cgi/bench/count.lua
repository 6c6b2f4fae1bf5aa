-- wrk script for apps/demo-cgi/bench/load.mjs.
-- Sends GET /counter until `duration` seconds (args[1]) have passed, then GET / (the
-- static index, which does not touch the store) until wrk's own -d ends, so no
-- counter request is still in flight when wrk stops. Counts the 200 counter pages
-- (body says "You are visitor") so the final count can be checked exactly.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local function now()
  local t = ffi.new("bench_timespec")
  ffi.C.clock_gettime(CLOCK_MONOTONIC, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local counter_req, idle_req, deadline
function init(args)
  counter_req = wrk.format("GET", "/counter")
  idle_req = wrk.format("GET", "/")
  deadline = now() + tonumber(args[1])
  ok, bad, idle = 0, 0, 0
end

function request()
  if now() < deadline then return counter_req end
  return idle_req
end

function response(status, headers, body)
  if string.find(body, "You are visitor", 1, true) then
    if status == 200 then ok = ok + 1 else bad = bad + 1 end
  elseif string.find(body, "<h1>persist demo</h1>", 1, true) then
    idle = idle + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local o, b, i = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); i = i + t:get("idle")
  end
  io.write(string.format("BENCH ok=%d bad=%d idle=%d errors=%d\n", o, b, i,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status))
end
