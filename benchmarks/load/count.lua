-- wrk script for the fixed-request cases: the request is wrk's own (method, URL and -H headers
-- from the command line); this only counts every response's status per thread and, when the
-- run ends, prints one machine-readable line for benchmarks/load/run.py (common.lua's report).
-- Usage: wrk -s count.lua -H 'Cookie: ...' http://127.0.0.1:PORT/path
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

function init(args)
   statuses = {}
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end
