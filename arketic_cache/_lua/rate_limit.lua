-- Decide a rate-limited request against one or more limits, atomically, on Redis' own clock.
-- Every limit is checked first; the request is recorded in all of them only if it fits in all,
-- so a denied request consumes nothing.
--
-- KEYS[i]     the state of limit i
-- ARGV[1]     cost: units the request uses (1 <= cost <= every limit)
-- ARGV[2]     request id: an integer < 2^40 drawn by the caller before sending
-- ARGV[3]     now in microseconds, or '' for Redis TIME (a seam for tests only)
-- ARGV[2+2i], ARGV[3+2i]  limit i's kind and size; ARGV[3+2n+i] its window in µs
--   kind 1  log: a sorted set with one member per admitted unit (id * 4096 + unit), scored
--           by admission time; exact over any trailing window
--   kind 2  buckets: a hash of 64 sub-window counters; the partly expired oldest bucket
--           still counts in full, so it may admit a little late but never too many. Beside
--           the buckets: t, their running total; o, the oldest bucket that may be live;
--           l, the newest; w, the window (µs). A decision reads those four and subtracts
--           only the buckets that expired since the last one (each bucket once): O(1)
--           amortised, never a whole-hash read (except once for a hash written without t,
--           or with another width, which is then read as it was before)
--   kind 3  calendar month (UTC): a hash {p = month number, n = units}; resets on the 1st
-- Returns 'allowed now binding', then per limit ' count remaining retry_after reset_after'
--   (integers, times in µs; binding = the limit that denied, or the one with least remaining)
local cost = tonumber(ARGV[1])
local id = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n = #KEYS
local BUCKETS = 64
local DAY = 86400000000
local unpack = unpack or table.unpack

-- Numbers past 10^14 go to Redis as integer strings (Lua's default format rounds them).
local function int(x)
  return string.format('%.0f', x)
end

-- Days since 1970-01-01 of a civil date, and the month number of a day (H. Hinnant's algorithms).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function month_of(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end

-- A bucket hash read whole (no running total yet, or another width): drop the expired
-- buckets, and return the live total, oldest and newest bucket (nil, nil when none).
local function whole(key, first, window)
  local total, oldest, newest, stale = 0, nil, nil, {}
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    local bucket = tonumber(fields[j])
    if bucket == nil then
      stale[#stale + 1] = fields[j]  -- t, o, l, w: rewritten below
    elseif bucket < first then
      stale[#stale + 1] = fields[j]
    else
      total = total + tonumber(fields[j + 1])
      oldest = oldest and math.min(oldest, bucket) or bucket
      newest = newest and math.max(newest, bucket) or bucket
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if newest then
    redis.call('HSET', key, 't', total, 'o', int(oldest), 'l', int(newest), 'w', int(window))
  end
  return total, oldest, newest
end

-- Read each limit's state (dropping what has expired) and whether the request fits.
local state = {}
local fits = true
for i = 1, n do
  local key = KEYS[i]
  local kind = tonumber(ARGV[2 + 2 * i])
  local limit = tonumber(ARGV[3 + 2 * i])
  local window = tonumber(ARGV[3 + 2 * n + i])
  local s = {kind = kind, limit = limit, window = window, count = 0, retry = 0, reset = 0}
  if kind == 1 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
    s.count = redis.call('ZCARD', key)
    local over = s.count + cost - limit
    if over > 0 then
      local oldest = redis.call('ZRANGE', key, over - 1, over - 1, 'WITHSCORES')
      s.retry = tonumber(oldest[2]) + window - now
    end
  elseif kind == 2 then
    local width = window / BUCKETS
    s.width = width
    local first = math.floor((now - window) / width)  -- the oldest bucket still in the window
    local meta = redis.call('HMGET', key, 't', 'o', 'l', 'w')
    local total, oldest, newest = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3])
    if total == nil or tonumber(meta[4]) ~= window then
      total, oldest, newest = whole(key, first, window)
      s.meta = true
    elseif newest < first then  -- all of it expired
      redis.call('DEL', key)
      total, oldest, newest = 0, nil, nil
    elseif oldest < first then  -- subtract the buckets that left the window since
      local gone = {}
      for b = oldest, first - 1 do gone[#gone + 1] = int(b) end
      for _, c in ipairs(redis.call('HMGET', key, unpack(gone))) do
        total = total - (tonumber(c) or 0)
      end
      redis.call('HDEL', key, unpack(gone))
      oldest = first
      redis.call('HSET', key, 'o', int(oldest), 't', total)
    end
    s.count, s.oldest, s.newest = total, oldest, newest
    local over = total + cost - limit
    if over > 0 then  -- denied: bucket b leaves the window at (b + 1) * width + window
      local live = {}
      for b = math.max(oldest, first), newest do live[#live + 1] = int(b) end
      local counts = redis.call('HMGET', key, unpack(live))
      for j = 1, #live do
        if over > 0 then
          over = over - (tonumber(counts[j]) or 0)
          if over <= 0 then s.retry = (tonumber(live[j]) + 1) * width + window - now end
        end
      end
    end
    if newest then s.reset = (newest + 1) * width + window - now end
  else
    local y, m = month_of(math.floor(now / DAY))
    local period = y * 12 + m - 1
    if m == 12 then y, m = y + 1, 1 else m = m + 1 end
    local next_start = days_from_civil(y, m, 1) * DAY
    s.period, s.ends = period, next_start - now
    local stored = redis.call('HMGET', key, 'p', 'n')
    if tonumber(stored[1]) == period then s.count = tonumber(stored[2]) or 0 end
    if s.count + cost > limit then s.retry = s.ends end
    if s.count > 0 then s.reset = s.ends end
  end
  if s.count + cost > limit then fits = false end
  state[i] = s
end

-- Record the request everywhere, or nowhere.
if fits then
  for i = 1, n do
    local key, s = KEYS[i], state[i]
    if s.kind == 1 then
      local args, base = {}, id * 4096
      for unit = 0, cost - 1 do
        args[#args + 1] = int(now)
        args[#args + 1] = int(base + unit)
      end
      redis.call('ZADD', key, unpack(args))
      -- The key must outlive its newest entry by a window: extend it to two windows only
      -- when less than one is left (a read is cheaper than a write on every request).
      local ttl = math.ceil(s.window / 1000)
      if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, 2 * ttl) end
      s.reset = s.window
    elseif s.kind == 2 then
      local b = math.floor(now / s.width)
      redis.call('HINCRBY', key, int(b), cost)
      redis.call('HINCRBY', key, 't', cost)
      -- Its expiry, set when a bucket starts (window + width from its first admission), is
      -- past the moment the newest bucket leaves the window.
      if s.meta or s.newest == nil or b > s.newest or b < s.oldest then
        local oldest = s.oldest and math.min(s.oldest, b) or b
        local newest = s.newest and math.max(s.newest, b) or b
        redis.call('HSET', key, 'o', int(oldest), 'l', int(newest), 'w', int(s.window))
        if newest == b then redis.call('PEXPIRE', key, math.ceil((s.window + s.width) / 1000)) end
      end
      s.reset = (b + 1) * s.width + s.window - now
    else
      if s.count == 0 then redis.call('HSET', key, 'p', s.period, 'n', 0) end
      redis.call('HINCRBY', key, 'n', cost)
      redis.call('PEXPIRE', key, math.ceil(s.ends / 1000))
      s.reset = s.ends
    end
    s.count = s.count + cost
  end
end

-- A denied request's logs reset when their newest entry leaves (an admitted one: a window).
if not fits then
  for i = 1, n do
    local s = state[i]
    if s.kind == 1 and s.count > 0 then
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      s.reset = tonumber(newest[2]) + s.window - now
    end
  end
end

-- The binding limit: the longest wait among those that denied, else the least remaining.
local binding, worst = 1, nil
for i = 1, n do
  local s = state[i]
  local score
  if fits then score = s.count - s.limit else score = s.retry end
  if worst == nil or score > worst then binding, worst = i, score end
end

-- One string, not an array: the client reads and splits it faster than a nested reply.
local reply = {fits and 1 or 0, int(now), binding}
for i = 1, n do
  local s = state[i]
  reply[#reply + 1] = s.count
  reply[#reply + 1] = math.max(s.limit - s.count, 0)
  reply[#reply + 1] = fits and 0 or int(math.ceil(s.retry))
  reply[#reply + 1] = int(math.ceil(s.reset))
end
return table.concat(reply, ' ')
