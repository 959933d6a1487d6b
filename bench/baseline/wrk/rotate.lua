-- wrk script: optionally rotate a header value through a key file, and print
-- a machine-readable summary line ("WRKJSON {...}") at the end.
--
-- usage: wrk -t2 -c32 -d10s -s wrk/rotate.lua URL -- METHOD [HEADER KEYFILE]
--   e.g. ... http://127.0.0.1:8001/dynconfig -- GET X-Arista-SystemMAC keys/macs100.txt
-- Requests are pre-built in init(); each thread starts at a different offset
-- and walks the key list round-robin, so lookups vary (100 distinct keys).
--
-- ztpd's copy adds an optional fourth argument, THREADS (wrk's -t): thread k then sends
-- only keys k+1, k+1+THREADS, ..., so no two threads send the same key and each key is
-- sent once per pass over the file (the uncached path over every MAC):
--   wrk -t2 ... -s wrk/rotate.lua URL -- GET X-Arista-SystemMAC keys/macs_all.txt 2
-- Without it the script behaves exactly as the baseline harness's rotate.lua.

local reqs = {}
local idx = 0
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
end

function init(args)
   local method = args[1] or "GET"
   local header = args[2]
   local keyfile = args[3]
   local threads = tonumber(args[4] or "")
   local body = nil
   if method == "POST" then body = "" end
   -- keep any -H headers given on the wrk command line (e.g. "Connection: close")
   local function hdrs(extra_k, extra_v)
      local h = {}
      for k, v in pairs(wrk.headers) do h[k] = v end
      if extra_k then h[extra_k] = extra_v end
      return h
   end
   if header and keyfile then
      local n = 0
      for line in io.lines(keyfile) do
         if #line > 0 then
            if not threads or n % threads == (tid or 0) then
               reqs[#reqs + 1] = wrk.format(method, nil, hdrs(header, line), body)
            end
            n = n + 1
         end
      end
   else
      reqs[1] = wrk.format(method, nil, hdrs(), body)
   end
   if threads then
      idx = 0                          -- threads send disjoint keys
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
