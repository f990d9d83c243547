-- wrk script for the scoped list benchmark: projects(first: 20) as a random seeded organization.
-- Usage: wrk -t2 -c32 -d10s -s bench/wrk.lua http://127.0.0.1:PORT/graphql -- 1000
local orgs = 1000

function init(args)
  orgs = tonumber(args[1] or "1000")
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local i = math.random(0, orgs - 1)
  local key = string.format("tql_bench%05d_%040d", i, i)
  local body = '{"query":"{ projects(first: 20) { edges { node { id name } } } }"}'
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["X-Api-Key"] = key }, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms  p99 %.2f ms  max %.2f ms  errors %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
