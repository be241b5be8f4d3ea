-- wrk script for the SCIM provisioning burst: every request is a POST {scim}/Users creating a
-- new user (unique userName: run tag, wrk thread, per-thread counter), counted by status.
-- The SCIM base path is the URL's path; the bearer token comes as a -H header.
-- Usage: wrk -s scim.lua -H 'Authorization: Bearer TOKEN' http://127.0.0.1:PORT/sso-gate/scim/v2/DIR/Users -- TAG
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

function init(args)
   statuses = {}
   tag = args[1] or "load"
   n = 0
   wrk.headers["Content-Type"] = "application/scim+json"
end

function request()
   n = n + 1
   local user = string.format("%s-t%d-%d", tag, tid, n)
   local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
      .. '"userName":"' .. user .. '@acme.test","externalId":"' .. user .. '",'
      .. '"name":{"givenName":"Load","familyName":"User ' .. n .. '"},'
      .. '"emails":[{"value":"' .. user .. '@acme.test","type":"work","primary":true}],'
      .. '"active":true}'
   return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end
