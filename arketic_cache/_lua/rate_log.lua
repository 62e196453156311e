-- rate_limit.lua for its most common call, one exact log, with the same arguments and reply:
-- this case runs on every request of an API, so it does only the Redis calls it needs.
--
-- KEYS[1]  the log: a sorted set with one member per admitted unit (id * 4096 + unit),
--          scored by admission time in µs
-- ARGV     cost, request id, now in µs or '' for Redis TIME (a seam for tests only),
--          kind (1), limit, window in µs
-- Returns 'allowed now 1 count remaining retry_after reset_after' (integers, times in µs)
local key = KEYS[1]
local cost, limit, window = tonumber(ARGV[1]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(ARGV[3])
end
-- '%.0f': numbers past 10^14 go to Redis as integer strings (Lua's default format rounds them).
local fmt = string.format
redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt('%.0f', now - window))
local count = redis.call('ZCARD', key)
local over = count + cost - limit
if over > 0 then
  -- Denied, nothing recorded: it fits once the entry at rank over-1 leaves; everything
  -- counted now has left when the newest entry has.
  local oldest = redis.call('ZRANGE', key, over - 1, over - 1, 'WITHSCORES')
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return fmt('0 %.0f 1 %d %d %.0f %.0f', now, count, math.max(limit - count, 0),
    tonumber(oldest[2]) + window - now, tonumber(newest[2]) + window - now)
end
local stamp, base = fmt('%.0f', now), tonumber(ARGV[2]) * 4096
if cost == 1 then
  redis.call('ZADD', key, stamp, fmt('%.0f', base))
else
  local args = {}
  for unit = 0, cost - 1 do
    args[2 * unit + 1] = stamp
    args[2 * unit + 2] = fmt('%.0f', base + unit)
  end
  redis.call('ZADD', key, (unpack or table.unpack)(args))
end
-- The key must outlive its newest entry by a window: extend it to two windows only when less
-- than one is left (a read is cheaper than a write on every request).
local ttl = math.ceil(window / 1000)
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, 2 * ttl) end
return fmt('1 %s 1 %d %d 0 %.0f', stamp, count + cost, limit - count - cost, window)
