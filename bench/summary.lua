-- wrk's done() hook for bench/post.lua and bench/mixed.lua: one `WRK_JSON {...}` line with the run's
-- counts, errors and latencies in microseconds, so the Python side need not parse wrk's text.

function done(summary, latency, requests)
  local e = summary.errors
  local percentiles = {}
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    percentiles[#percentiles + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
  end
  io.write(
    string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
        .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
        .. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"percentiles":{%s}}}\n',
      summary.requests,
      summary.duration,
      summary.bytes,
      e.connect,
      e.read,
      e.write,
      e.status,
      e.timeout,
      latency.min,
      latency.mean,
      latency.stdev,
      latency.max,
      table.concat(percentiles, ",")
    )
  )
end
