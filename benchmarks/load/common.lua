-- Shared by the load test's wrk scripts: keep every thread, then sum the per-thread `statuses`
-- tables in `done` and print one line run.py parses:
--   LOAD_RESULT {"requests": N, "duration_us": N, "statuses": {"200": N, ...},
--                "errors": {"connect": N, ...}, "latency_us": {"p50": N, "p99": N, ...}}
local M = {}
local threads = {}

function M.setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

function M.done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for code, n in pairs(s) do
            total[code] = (total[code] or 0) + n
         end
      end
   end
   local parts = {}
   for code, n in pairs(total) do
      table.insert(parts, string.format('"%d": %d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'LOAD_RESULT {"requests": %d, "duration_us": %d, "statuses": {%s}, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, table.concat(parts, ", "),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end

return M
