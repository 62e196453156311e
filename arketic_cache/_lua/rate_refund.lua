-- Give back units of an admitted request that ended up cheaper (see rate_limit.lua).
-- KEYS[i]   the state of limit i
-- ARGV[1]   units to give back (1 <= amount <= the request's cost)
-- ARGV[2]   how many of the request's units are still counted (units above were refunded)
-- ARGV[3]   the request's id
-- ARGV[4]   when it was admitted (µs, as rate_limit.lua returned)
-- ARGV[5]   now in µs, or '' for Redis TIME (a seam for tests only)
-- ARGV[4+2i], ARGV[5+2i]  limit i's kind and window in µs; ARGV[6+2n] the month (y*12+m-1) it was admitted in
-- Returns the units given back in each limit (0 where they have already expired)
local amount, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local id, at = tonumber(ARGV[3]), tonumber(ARGV[4])
local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local BUCKETS = 64
local unpack = unpack or table.unpack

local function int(x)
  return string.format('%.0f', x)
end

local reply = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local kind = tonumber(ARGV[4 + 2 * i])
  local window = tonumber(ARGV[5 + 2 * i])
  local given = 0
  if kind == 1 then  -- the request's last units, unless they have left the window
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
    local members = {}
    for unit = cost - amount, cost - 1 do members[#members + 1] = int(id * 4096 + unit) end
    given = redis.call('ZREM', key, unpack(members))
  elseif kind == 2 then  -- the bucket it was counted in, if still there (and the running total)
    local bucket = int(math.floor(at / (window / BUCKETS)))
    local units = tonumber(redis.call('HGET', key, bucket))
    if units then
      given = math.min(units, amount)
      if units - given > 0 then
        redis.call('HINCRBY', key, bucket, -given)
      else
        redis.call('HDEL', key, bucket)
      end
      if redis.call('HEXISTS', key, 't') == 1 then redis.call('HINCRBY', key, 't', -given) end
    end
  else  -- the month it was counted in, if that is still the current one
    local stored = redis.call('HMGET', key, 'p', 'n')
    local units = tonumber(stored[2])
    if units and tonumber(stored[1]) == tonumber(ARGV[6 + 2 * #KEYS]) then
      given = math.min(units, amount)
      redis.call('HINCRBY', key, 'n', -given)
    end
  end
  reply[i] = given
end
return reply
