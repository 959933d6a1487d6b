-- wrk script for IOS XE call-backs: rotates over a key file of lines "SERIAL<TAB>TOKEN",
-- sending each line's serial in X-Serial-Number and its own token in X-Ztpd-Token (ztpd
-- binds a token to the address that fetched the script and to the first serial that
-- calls back with it; servers that know no tokens ignore the header). Prints the same
-- "WRKJSON {...}" summary line as rotate.lua.
--
-- usage: wrk -t2 -c32 -d10s -s wrk/callback.lua URL -- METHOD KEYFILE [THREADS]
--   e.g. ... http://127.0.0.1:8080/callback -- POST keys/callback_new.txt 2
-- Without THREADS each thread walks all lines from its own offset, as rotate.lua does.
-- With THREADS (wrk's -t) thread k sends only lines k+1, k+1+THREADS, ...: no two threads
-- send the same line, so each line is sent once per pass over the file (for serials
-- that must be new when they call back).

local reqs = {}
local idx = 0
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end

function init(args)
   local method = args[1] or "POST"
   local keyfile = args[2]
   local threads = tonumber(args[3] or "")
   if not keyfile then
      error("usage: wrk ... -s callback.lua URL -- METHOD KEYFILE [THREADS]")
   end
   local body = nil
   if method == "POST" then body = "" end
   local n = 0
   for line in io.lines(keyfile) do
      if #line > 0 then
         local serial, token = line:match("^([^\t]+)\t([^\t]+)$")
         if not serial then
            error("callback.lua: " .. keyfile .. ": expected SERIAL<TAB>TOKEN, got " .. line)
         end
         if not threads or n % threads == (tid or 0) then
            -- keep any -H headers given on the wrk command line
            local h = {}
            for k, v in pairs(wrk.headers) do h[k] = v end
            h["X-Serial-Number"] = serial
            h["X-Ztpd-Token"] = token
            reqs[#reqs + 1] = wrk.format(method, nil, h, body)
         end
         n = n + 1
      end
   end
   if #reqs == 0 then
      error("callback.lua: no lines for thread " .. (tid or 0) .. " in " .. keyfile)
   end
   if threads then
      idx = 0
   else
      idx = ((tid or 0) * 37) % #reqs   -- different start offset per thread
   end
end

function request()
   idx = idx % #reqs + 1
   return reqs[idx]
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"bytes":%d}\n',
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
      e.connect, e.read, e.write, e.status, e.timeout, summary.bytes))
end
