-- wrk script for crossdock's intake benchmark: POST /v1/events.
--
--   wrk -t2 -c16 -d10s -s bench/intake.lua http://127.0.0.1:PORT -- batch=1 run=R key=K
--
-- Arguments after "--" (all optional):
--   batch=N   events per request: 1 sends one event object, N > 1 sends
--             {"events":[...]} (default 1)
--   run=R     a token that makes event ids unique across runs (default: time)
--   key=K     API key, sent as "Authorization: Bearer K" (default: none)
--   pace=R    about R requests/s in all (with conns=C, the connection count
--             given to wrk's -c, default 16); a little under R when answers are slow
--
-- Every event gets a unique event_id, "b<run>-<thread>-<counter>", so the hub
-- stores every one of them (a repeated id would be a duplicate: acknowledged
-- without a write, which would measure nothing). Bodies are realistic
-- shipment.confirmed events (contract section 4) of about 550 bytes: 3 to 5
-- lines, carrier, ship_to, built from pre-rendered pieces so that
-- wrk spends as little CPU as possible (it shares the machine with the hub).
--
-- The response hook counts answers that are not 202 and 202s that list a
-- duplicate; done() prints one machine-readable line for bench/run.sh:
--   XDBENCH requests=... ok=... non202=... dup=... events=... p50_us=... ...
-- plus, when anything went wrong, XDBENCH_ERR lines with a sample answer.

local threads = {}
local next_tid = 1

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- Pacing (bench/e2e.sh): pace=R conns=C spreads R requests/s over C connections.
pace = nil
conns = 16

-- Per-thread state (each wrk thread has its own Lua state).
batch = 1      -- events per request (global: done() reads it)
local prefix = ""
local tids = ""
local counter = 0
local head = ""
ok = 0         -- 202 answers
non202 = 0     -- any other status
dup = 0        -- 202 answers listing a duplicate
body_bytes = 0 -- request body bytes sent
bodies = 0     -- request bodies built
err_sample = nil

-- Pre-rendered variants; an event picks one of each by its counter.
local customers = {"ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI"}
local warehouses = {"DC1", "DC2", "DC3"}
local carriers = {
   '{"code":"UPSN","service":"GROUND","tracking":"1Z999AA1',
   '{"code":"FDXG","service":"HOME","tracking":"7712',
   '{"code":"USPS","service":"PRIORITY","tracking":"9400',
   '{"code":"DHLE","service":"EXPRESS","tracking":"JD0146',
}
local ship_tos = {
   '{"name":"Northwind Traders","city":"Columbus","region":"OH","postal_code":"43004","country":"US"}',
   '{"name":"Contoso Retail #214","city":"Reno","region":"NV","postal_code":"89502","country":"US"}',
   '{"name":"Fabrikam Outlet","city":"Savannah","region":"GA","postal_code":"31401","country":"US"}',
   '{"name":"Tailspin Toys","city":"Mississauga","region":"ON","postal_code":"L5B 2C9","country":"CA"}',
}
local skus = {"SKU-10023", "SKU-20417", "SKU-31208", "SKU-40991", "SKU-55102", "SKU-60310", "SKU-77815"}
local qtys = {"12", "1", "4.5", "24", "6", "2", "48", "3"}
local uoms = {',"uom":"CS"', "", ',"uom":"EA"', "", ',"uom":"PK"'} -- "" = default (EA)

-- lines[k]: a few pre-rendered arrays of k lines, k = 3..5
local lines = {}
local times = {}

local function render_lines(k, seed)
   local parts = {}
   for i = 1, k do
      local s = seed + i * 3
      parts[i] = string.format('{"sku":"%s","qty":%s%s}', skus[s % #skus + 1], qtys[s % #qtys + 1],
                               uoms[s % #uoms + 1])
   end
   return "[" .. table.concat(parts, ",") .. "]"
end

function init(args)
   local run = tostring(os.time())
   local key = nil
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if k == "batch" then batch = tonumber(v)
      elseif k == "run" then run = v
      elseif k == "key" and v ~= "" then key = v
      elseif k == "pace" then pace = tonumber(v)
      elseif k == "conns" then conns = tonumber(v)
      end
   end
   if not batch or batch < 1 then batch = 1 end
   -- With pace=R, each connection waits conns*1000/R ms before its next
   -- request (wrk's delay() hook, which wrk looks for after init), so the run
   -- offers about R requests per second. Unpaced runs define no delay().
   if pace and pace > 0 then
      local ms = (conns or 16) * 1000 / pace
      delay = function() return ms end
   end
   prefix = "b" .. run .. "-" .. tostring(tid or 0) .. "-"
   tids = tostring(tid or 0) .. "-"

   for k = 3, 5 do
      lines[k] = {}
      for v = 1, 4 do lines[k][v] = render_lines(k, v * 5 + k) end
   end
   for s = 0, 59 do times[s + 1] = string.format("2026-11-28T14:%02d:%02dZ", s, 59 - s) end

   local host = wrk.host
   if wrk.port then host = host .. ":" .. wrk.port end
   head = "POST /v1/events HTTP/1.1\r\nHost: " .. host ..
          "\r\nContent-Type: application/json\r\n"
   if key then head = head .. "Authorization: Bearer " .. key .. "\r\n" end
   head = head .. "Content-Length: "
end

-- One shipment.confirmed event with a fresh id, as pieces appended to t
-- (from index k on); returns the next free index. Every piece is a string
-- (no number-to-string conversion inside table.concat), and a batch is
-- concatenated once.
local weights = {}
for w = 0, 89 do weights[w + 1] = tostring(10 + w) end
local function event(t, k)
   counter = counter + 1
   local n = counter
   local ns = tostring(n)
   local nl = 3 + n % 3
   t[k] = '{"event_id":"'; t[k + 1] = prefix; t[k + 2] = ns
   t[k + 3] = '","type":"shipment.confirmed","occurred_at":"'; t[k + 4] = times[n % 60 + 1]
   t[k + 5] = '","source":"wms-bench","data":{"warehouse":"'; t[k + 6] = warehouses[n % 3 + 1]
   t[k + 7] = '","shipment_id":"SHP-'; t[k + 8] = tids; t[k + 9] = ns
   t[k + 10] = '","order_id":"SO-'; t[k + 11] = tids; t[k + 12] = ns
   t[k + 13] = '","customer":"'; t[k + 14] = customers[n % 5 + 1]
   t[k + 15] = '","ship_date":"2026-11-28","carrier":'; t[k + 16] = carriers[n % 4 + 1]
   t[k + 17] = ns
   t[k + 18] = '"},"lines":'; t[k + 19] = lines[nl][n % 4 + 1]
   t[k + 20] = ',"weight_kg":'; t[k + 21] = weights[n % 90 + 1]
   t[k + 22] = '.5,"ship_to":'; t[k + 23] = ship_tos[n % 4 + 1]
   t[k + 24] = '}}'
   return k + 25
end

local parts = {}
function request()
   local k = 1
   if batch == 1 then
      k = event(parts, 1)
   else
      parts[1] = '{"events":['
      k = 2
      for i = 1, batch do
         if i > 1 then parts[k] = ","; k = k + 1 end
         k = event(parts, k)
      end
      parts[k] = "]}"
      k = k + 1
   end
   local body = table.concat(parts, "", 1, k - 1)
   body_bytes = body_bytes + #body
   bodies = bodies + 1
   return head .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
   if status == 202 then
      ok = ok + 1
      if not body:find('"duplicates"%s*:%s*%[%s*%]') then
         dup = dup + 1
         if not err_sample then err_sample = "202 with duplicates: " .. body:sub(1, 300) end
      end
   else
      non202 = non202 + 1
      if not err_sample then err_sample = status .. " " .. body:sub(1, 300) end
   end
end

function done(summary, latency, requests)
   local t = {ok = 0, non202 = 0, dup = 0, body_bytes = 0, bodies = 0}
   local samples = {}
   local b = 1
   for _, th in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
      b = th:get("batch") or b
      local s = th:get("err_sample")
      if s then table.insert(samples, s) end
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "XDBENCH requests=%d ok=%d non202=%d dup=%d batch=%d events=%d duration_us=%d" ..
      " rps=%.1f eps=%.1f mean_us=%.0f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d" ..
      " err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d" ..
      " body_avg=%.0f event_avg=%.0f\n",
      summary.requests, t.ok, t.non202, t.dup, b, t.ok * b, summary.duration,
      summary.requests / secs, t.ok * b / secs, latency.mean,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status,
      t.bodies > 0 and t.body_bytes / t.bodies or 0,
      t.bodies > 0 and t.body_bytes / t.bodies / b or 0))
   for _, s in ipairs(samples) do
      io.write("XDBENCH_ERR ", (s:gsub("[\r\n]", " ")), "\n")
   end
end
