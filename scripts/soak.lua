-- wrk script of scripts/soak.sh: cycles through a mix of allowed, denied and card-carrying
-- requests through the client sidecar, and counts the answers by status per thread.
local pan_body = '{"card":"4111 1111 1111 1111","amount":1299,"currency":"EUR"}'
local big = {}
for i = 1, 200 do
  big[#big + 1] = string.format('{"id":"item-%05d","amount":%d,"note":"%s"}', i, i * 37, string.rep("x", 40))
  if i % 50 == 0 then big[#big + 1] = '{"card":"5555 5555 5555 4444"}' end
end
local big_body = "[" .. table.concat(big, ",") .. "]"
local function req(caller, method, path, body)
  local h = { ["x-mesh-caller"] = caller }
  if body then h["content-type"] = "application/json" end
  return wrk.format(method, path, h, body)
end
local n = 0
counts = {}

-- Built in init: wrk.format fills in the Host header, which wrk knows only by then.
local mix
function init(args)
  mix = {
    req("checkout", "POST", "/v1/charges", pan_body),          -- allowed, a PAN in the request
    req("checkout", "GET", "/fixture/card-on-file.json"),      -- allowed, a PAN masked in the response
    req("fraud", "GET", "/fixture/card-on-file.json"),         -- allowed, a PAN granted in the response
    req("fraud", "GET", "/v1/orders/ord_123"),                 -- allowed
    req("newsletter", "POST", "/v1/charges", '{"amount":1}'),  -- denied: no rule
    req("plaintext", "POST", "/v1/charges", '{"amount":1}'),   -- denied: no mTLS
    req("checkout", "GET", "/admin/keys"),                     -- denied: a deny rule
    req("checkout", "POST", "/v1/charges", big_body),          -- allowed, ~16 KiB with PANs
  }
  n = math.random(0, #mix - 1)
end

function request()
  n = n + 1
  return mix[(n % #mix) + 1]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for status, c in pairs(t:get("counts")) do
      all[status] = (all[status] or 0) + c
    end
  end
  for status, c in pairs(all) do
    io.write(string.format("status %d %d\n", status, c))
  end
  io.write(string.format("errors connect %d read %d write %d timeout %d status %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
