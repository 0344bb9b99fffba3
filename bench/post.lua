-- wrk script for bench/run.py: POST a JSON body with extra headers, then print one JSON summary line.
--
--   wrk -t1 -c1 -d10s --latency -s bench/post.lua URL -- BODY_FILE ["Name: value" ...]
--
-- The request is formatted once per thread and reused: building it per request would cost the load
-- generator CPU that the proxy under test needs (the machine has 2 cores).
-- done() prints `WRK_JSON {...}` with latencies in microseconds, so run.py need not parse wrk's text.

local req

function init(args)
  local file = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
  local body = file:read("*a")
  file:close()
  -- Overriding init skips wrk.init, which is what sets Host; HTTP/1.1 needs it.
  local headers = { ["Host"] = wrk.host .. ":" .. tostring(wrk.port), ["Content-Type"] = "application/json" }
  for i = 2, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    if name then
      headers[name] = value
    end
  end
  req = wrk.format("POST", nil, headers, body)
end

function request()
  return req
end

-- done() lives beside this script, shared with the other bench scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
