-- wrk script for the soak: a fixed mix, in a repeating cycle of 20 requests per thread:
--   9 anonymous GET /                              (pass-through)
--   6 GET /dashboard with the SSO session cookie   (authenticated)
--   3 GET /dashboard with the app's own password cookie (pass-through, signed in)
--   1 GET {prefix}/sso/me with the SSO session cookie (a gate route)
--   1 SCIM POST {scim}/Users, a new user each time (unique userName)
-- Usage: wrk -s mixed.lua http://127.0.0.1:PORT/ -- TAG SSO_COOKIE PASSWORD_COOKIE PREFIX SCIM_PATH SCIM_TOKEN
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

function init(args)
   statuses = {}
   tag, sso, password, prefix, scim, token = args[1], args[2], args[3], args[4], args[5], args[6]
   n = 0
   anon = wrk.format("GET", "/")
   sso_dash = wrk.format("GET", "/dashboard", {Cookie = sso})
   password_dash = wrk.format("GET", "/dashboard", {Cookie = password})
   me = wrk.format("GET", prefix .. "/sso/me", {Cookie = sso})
end

function request()
   n = n + 1
   local k = n % 20
   if k < 9 then
      return anon
   elseif k < 15 then
      return sso_dash
   elseif k < 18 then
      return password_dash
   elseif k == 18 then
      return me
   end
   local user = string.format("%s-t%d-%d", tag, tid, n)
   local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
      .. '"userName":"' .. user .. '@acme.test",'
      .. '"emails":[{"value":"' .. user .. '@acme.test","type":"work","primary":true}],'
      .. '"active":true}'
   return wrk.format("POST", scim, {
      Authorization = "Bearer " .. token,
      ["Content-Type"] = "application/scim+json",
   }, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end
