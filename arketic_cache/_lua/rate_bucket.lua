-- rate_limit.lua for one bucket limit (the layout and guarantees are told there), with the
-- same arguments and reply and only the Redis calls this case needs: a large limit decided
-- on every request pays for no month arithmetic, no loop over limits, no state tables.
--
-- KEYS[1]  the hash: bucket counters, and t (their total), o and l (the oldest and newest
--          bucket), w (the window)
-- ARGV     cost, request id, now in µs or '' for Redis TIME (a seam for tests only),
--          kind (2), limit, window in µs
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
local fmt, unpack = string.format, unpack or table.unpack
local width = window / 64
local first = math.floor((now - window) / width)  -- the oldest bucket still in the window
local meta = redis.call('HMGET', key, 't', 'o', 'l', 'w')
local total, oldest, newest = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3])
local rewrite = false
if total == nil or tonumber(meta[4]) ~= window then  -- written before, or another window
  total, oldest, newest, rewrite = 0, nil, nil, true
  local fields, stale = redis.call('HGETALL', key), {}
  for j = 1, #fields, 2 do
    local bucket = tonumber(fields[j])
    if bucket == nil or bucket < first then
      stale[#stale + 1] = fields[j]
    else
      total = total + tonumber(fields[j + 1])
      oldest = oldest and math.min(oldest, bucket) or bucket
      newest = newest and math.max(newest, bucket) or bucket
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if newest then
    local w = fmt('%.0f', window)
    redis.call('HSET', key, 't', total, 'o', fmt('%.0f', oldest), 'l', fmt('%.0f', newest), 'w', w)
  end
elseif newest < first then  -- all of it expired
  redis.call('DEL', key)
  total, oldest, newest = 0, nil, nil
elseif oldest < first then  -- subtract the buckets that left the window since
  local gone = {}
  for b = oldest, first - 1 do gone[#gone + 1] = fmt('%.0f', b) end
  for _, c in ipairs(redis.call('HMGET', key, unpack(gone))) do
    total = total - (tonumber(c) or 0)
  end
  redis.call('HDEL', key, unpack(gone))
  oldest = first
  redis.call('HSET', key, 'o', fmt('%.0f', oldest), 't', total)
end
local over = total + cost - limit
if over > 0 then  -- denied: bucket b leaves the window at (b + 1) * width + window
  local live, retry = {}, 0
  for b = math.max(oldest, first), newest do live[#live + 1] = fmt('%.0f', b) end
  local counts = redis.call('HMGET', key, unpack(live))
  for j = 1, #live do
    if over > 0 then
      over = over - (tonumber(counts[j]) or 0)
      if over <= 0 then retry = (tonumber(live[j]) + 1) * width + window - now end
    end
  end
  return fmt('0 %.0f 1 %d %d %.0f %.0f', now, total, math.max(limit - total, 0),
    math.ceil(retry), math.ceil((newest + 1) * width + window - now))
end
local b = math.floor(now / width)
local bucket = fmt('%.0f', b)
redis.call('HINCRBY', key, bucket, cost)
redis.call('HINCRBY', key, 't', cost)
-- The key outlives its newest bucket: set when a bucket starts, its expiry (window + width
-- from the bucket's first admission) is past the moment the bucket leaves the window.
if rewrite or newest == nil or b > newest or b < oldest then
  local low = oldest and math.min(oldest, b) or b
  local high = newest and math.max(newest, b) or b
  redis.call('HSET', key, 'o', fmt('%.0f', low), 'l', fmt('%.0f', high), 'w', fmt('%.0f', window))
  if high == b then redis.call('PEXPIRE', key, math.ceil((window + width) / 1000)) end
end
return fmt('1 %.0f 1 %d %d 0 %.0f', now, total + cost, limit - total - cost,
  math.ceil((b + 1) * width + window - now))
