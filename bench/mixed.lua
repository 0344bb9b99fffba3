-- wrk script for bench/suite.py's memory phase: alternate two request bodies (a JSON call and a
-- streamed one), stop after a number of answers, then print the same JSON summary as post.lua.
--
--   wrk -t1 -c32 -d600s -s bench/mixed.lua URL -- LIMIT BODY_A BODY_B ["Name: value" ...]
--
-- With one thread LIMIT is the number of answers in all. wrk's main thread sleeps out -d whatever its
-- worker threads do, so on reaching LIMIT the script prints `WRK_LIMIT` and the caller sends SIGINT,
-- which ends the run and prints the summary. Requests in flight then are cut, as at the end of any
-- wrk run, so the count wrk reports can differ from LIMIT by up to -c.

local requests, limit, answered, turn = {}, 0, 0, 0

local function read(path)
  local file = assert(io.open(path, "rb"), "cannot open body file " .. tostring(path))
  local body = file:read("*a")
  file:close()
  return body
end

function init(args)
  limit = tonumber(args[1])
  local headers = { ["Host"] = wrk.host .. ":" .. tostring(wrk.port), ["Content-Type"] = "application/json" }
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    if name then
      headers[name] = value
    end
  end
  requests[1] = wrk.format("POST", nil, headers, read(args[2]))
  requests[2] = wrk.format("POST", nil, headers, read(args[3]))
end

function request()
  turn = turn % 2 + 1
  return requests[turn]
end

function response(status, headers, body)
  answered = answered + 1
  if answered == limit then
    io.write("WRK_LIMIT\n")
    io.flush()
    wrk.thread:stop()
  end
end
-- done() lives beside this script, shared with the other bench scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
