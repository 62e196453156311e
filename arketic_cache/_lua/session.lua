-- Every session operation that writes, atomic, on Redis' clock (see _core/_session.py).
--
-- A session is a string at P..H, where P is the session prefix and H the SHA-256 (hex) of
-- the session id: the raw id, a bearer secret, never reaches Redis. Its value is JSON, always
-- in this field order (so a script reads the bookkeeping without decoding the data):
--   {"v":version,"c":created ms,"d":absolute deadline ms or 0,
--    "f":refresh family id or null,"i":the user's index key or null,"data":{...}}
-- "v" is bumped by every update (compare-and-set). The user index is a sorted set of JSON
-- strings, scored by expiry (ms): H for a session, r:F for refresh family F (64 and 34
-- bytes: within the 64 of the compact listpack encoding; indexes written before hold them
-- quoted, "H" and "r:F", which every operation also reads, removes and rewrites bare). Expired
-- members are dropped whenever the index is read, on rotate, issue and refresh, and on 1
-- create in 16; the index expires with its longest-lived member, so it never outgrows the
-- live sessions by more than a few.
-- A refresh family is a hash at P..'refresh:family:'..F {token, session, data, index}: the
-- current token's hash, the current session's member, a copy of the data (to start a new
-- session once the old one has expired) and the index key (JSON strings, data an object).
-- A token is a hash at P..'refresh:'..T {family, used}; a used token stays until it
-- expires, so presenting it again is recognised as reuse, which revokes its whole family.
--
-- ARGV[1] the operation, ARGV[2] now in ms or '' for Redis TIME (a seam for tests only),
-- ARGV[3] P, then the operation's arguments (ttl and lifetime in ms, members as JSON):
--   create   KEYS session[, index]  ARGV data, index JSON or '', ttl, lifetime or 0, member
--            -> 1, or 0 if the id is taken
--   extend   KEYS session  ARGV ttl, member, '1' to return the value  -> 1 (or the value),
--            or nil if there is no session (or its absolute lifetime is over: it ends)
--   update   KEYS session  ARGV version read, new data  -> 1, 0 on a version conflict,
--            -1 if there is no session
--   delete   KEYS session  ARGV member  -> 1, or 0 if there was no session
--   rotate   KEYS old, new  ARGV ttl, old member, new member  -> 1, or 0 if none
--   list     KEYS index  -> {H, value, ttl ms, ...} for each live session
--   logout   KEYS index  -> how many live sessions ended
--   issue    KEYS session  ARGV member, token hash, family id, refresh ttl  -> 1, 0 if none
--   refresh  KEYS token  ARGV new member, new token hash, ttl, lifetime, refresh ttl
--            -> 1, 0 for an unknown, expired or revoked token, -1 on reuse (the family ends)
local op, P = ARGV[1], ARGV[3]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end

-- (One string.format: a third cheaper than a chain of '..' with numbers in it.)
local function envelope(version, created, deadline, family, index, data)
  return string.format('{"v":%d,"c":%d,"d":%d,"f":%s,"i":%s,"data":%s}', version, created,
    deadline, family and ('"' .. family .. '"') or 'null', index or 'null', data)
end

-- The idle TTL, cut to the absolute deadline (<= 0: the session is over).
local function capped(ttl, deadline)
  if deadline > 0 and deadline - now < ttl then return deadline - now end
  return ttl
end

-- The index outlives its longest-lived member: GT extends an expiry (one call, the common
-- case), NX gives a new index its first one. Expiries are relative, as the members' own.
local function index_expire(index, ttl)
  if redis.call('PEXPIRE', index, ttl, 'GT') == 0 then redis.call('PEXPIRE', index, ttl, 'NX') end
end

-- Store a new session at key (member m) unless the key exists; list it in its index (its
-- JSON form, and its name when the caller has it decoded already).
-- The index comes second, so a failure there (a key of the wrong type) is caught and undone:
-- a script stops at an error but keeps the writes made before it.
local function start(key, m, data, index, name, family, ttl, lifetime)
  local deadline = lifetime > 0 and now + lifetime or 0
  ttl = capped(ttl, deadline)
  local value = envelope(1, now, deadline, family, index, data)
  if not redis.call('SET', key, value, 'NX', 'PX', ttl) then return 0 end
  if index then
    name = name or cjson.decode(index)
    local added = redis.pcall('ZADD', name, now + ttl, m)
    if type(added) == 'table' and added.err then
      redis.call('DEL', key)
      return added
    end
    -- Expired entries leave on every read of the index, and here on the 1 in 16 creates
    -- whose hash starts with 0: one call less for the others, and the index stays bounded.
    if string.byte(m, 1) == 48 then redis.call('ZREMRANGEBYSCORE', name, '-inf', now) end
    index_expire(name, ttl)
  end
  return 1
end

-- The hot write first: a create defines only the helpers it needs.
if op == 'create' then
  local index = ARGV[5] ~= '' and ARGV[5] or nil
  return start(KEYS[1], ARGV[8], ARGV[4], index, KEYS[2], nil, tonumber(ARGV[6]),
    tonumber(ARGV[7]))
end

-- "x" -> x, for members and ids that are hex (never escaped in JSON).
local function unquote(json) return string.sub(json, 2, -2) end

-- An index member as written now (bare), whether it was stored bare or quoted (before).
local function bare(m)
  if string.byte(m, 1) == 34 then return unquote(m) end
  return m
end

-- Remove a member from an index in either form.
local function drop(index, m)
  local b = bare(m)
  redis.call('ZREM', index, b, '"' .. b .. '"')
end

-- A stored session's parts, or nil if the value is missing or not ours. Inside a JSON
-- string every quote is escaped, so the first ',"data":' ends the index key.
local function parse(value)
  if not value then return nil end
  local v, c, d, at = string.match(value, '^{"v":(%d+),"c":(%d+),"d":(%d+),"f":()')
  if not at then return nil end
  local family, after = string.match(value, '^"(%x+)"(),"i":', at)
  if not family and string.sub(value, at, at + 8) == 'null,"i":' then after = at + 4 end
  if not after then return nil end
  local stop = string.find(value, ',"data":', after + 5, true)
  if not stop or string.sub(value, -1) ~= '}' then return nil end
  local index = string.sub(value, after + 5, stop - 1)
  return {version = tonumber(v), created = c, deadline = tonumber(d), family = family,
    index = index ~= 'null' and index or nil, data = string.sub(value, stop + 8, -2)}
end

local function index_put(index, member, expires)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZADD', index, expires, member)
  index_expire(index, expires - now)
end

-- End refresh family F: its current token, itself and (unless keep_session) its session.
local function revoke(family, index, keep_session)
  local key = P .. 'refresh:family:' .. family
  local fam = redis.call('HMGET', key, 'token', 'session')
  if fam[1] then redis.call('DEL', P .. 'refresh:' .. unquote(fam[1])) end
  if fam[2] and not keep_session then
    redis.call('DEL', P .. bare(fam[2]))
    if index then drop(index, fam[2]) end
  end
  redis.call('DEL', key)
  if index then drop(index, 'r:' .. family) end
end

-- End the session at key (member m, parts s): its index entry and refresh family go too.
local function finish(key, m, s)
  local ended = redis.call('DEL', key)
  if s then
    local index = s.index and cjson.decode(s.index)
    if index then drop(index, m) end
    if s.family then revoke(s.family, index, true) end
  end
  return ended
end

if op == 'extend' then
  local value = redis.call('GET', KEYS[1])
  local s = parse(value)
  if not s then  -- a value that is not ours goes back to a read, which ends the session
    if value and ARGV[6] == '1' then return value end
    return false
  end
  local ttl = capped(tonumber(ARGV[4]), s.deadline)
  if ttl <= 0 then
    finish(KEYS[1], ARGV[5], s)
    return false
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  if s.index then
    local index = cjson.decode(s.index)
    if redis.call('ZADD', index, 'XX', 'CH', now + ttl, ARGV[5]) == 0 then
      drop(index, ARGV[5])  -- listed quoted (written before), or not at all: list it bare
      redis.call('ZADD', index, now + ttl, ARGV[5])
    end
    index_expire(index, ttl)
  end
  if ARGV[6] == '1' then return value end
  return 1

elseif op == 'update' then
  local s = parse(redis.call('GET', KEYS[1]))
  if not s then return -1 end
  if s.version ~= tonumber(ARGV[4]) then return 0 end
  local value = envelope(s.version + 1, s.created, s.deadline, s.family, s.index, ARGV[5])
  redis.call('SET', KEYS[1], value, 'KEEPTTL')
  -- The refresh family's copy follows, so a refresh after expiry never restores old data
  -- (say, a role taken away).
  local family = s.family and P .. 'refresh:family:' .. s.family
  if family and redis.call('EXISTS', family) == 1 then
    redis.call('HSET', family, 'data', ARGV[5])
  end
  return 1

elseif op == 'delete' then
  return finish(KEYS[1], ARGV[4], parse(redis.call('GET', KEYS[1])))

elseif op == 'rotate' then
  local s = parse(redis.call('GET', KEYS[1]))
  if not s then return 0 end
  local ttl = capped(tonumber(ARGV[4]), s.deadline)
  if ttl <= 0 then
    finish(KEYS[1], ARGV[5], s)
    return 0
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ttl)
  if s.index then
    local index = cjson.decode(s.index)
    drop(index, ARGV[5])
    index_put(index, ARGV[6], now + ttl)
  end
  local family = s.family and P .. 'refresh:family:' .. s.family
  if family and redis.call('EXISTS', family) == 1 then  -- an expired one is not recreated
    redis.call('HSET', family, 'session', ARGV[6])
  end
  return 1

elseif op == 'list' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local found = {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(bare(m), 1, 2) ~= 'r:' then
      local key = P .. bare(m)
      local value = redis.call('GET', key)
      if value then
        found[#found + 1] = bare(m)
        found[#found + 1] = value
        found[#found + 1] = redis.call('PTTL', key)
      else
        redis.call('ZREM', KEYS[1], m)
      end
    end
  end
  return found

elseif op == 'logout' then
  local ended, families = 0, {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(bare(m), 1, 2) == 'r:' then
      families[#families + 1] = string.sub(bare(m), 3)
    else
      ended = ended + redis.call('DEL', P .. bare(m))
    end
  end
  for _, family in ipairs(families) do revoke(family, nil, false) end
  redis.call('DEL', KEYS[1])
  return ended

elseif op == 'issue' then
  local s = parse(redis.call('GET', KEYS[1]))
  if not s then return 0 end
  local index = s.index and cjson.decode(s.index)
  if s.family then revoke(s.family, index, true) end  -- one family per session
  local family, rttl = ARGV[6], tonumber(ARGV[7])
  local fkey, tkey = P .. 'refresh:family:' .. family, P .. 'refresh:' .. ARGV[5]
  redis.call('HSET', fkey, 'token', '"' .. ARGV[5] .. '"', 'session', ARGV[4], 'data', s.data)
  if s.index then redis.call('HSET', fkey, 'index', s.index) end
  redis.call('PEXPIRE', fkey, rttl)
  redis.call('HSET', tkey, 'family', '"' .. family .. '"', 'used', 0)
  redis.call('PEXPIRE', tkey, rttl)
  local value = envelope(s.version, s.created, s.deadline, family, s.index, s.data)
  redis.call('SET', KEYS[1], value, 'KEEPTTL')
  if index then index_put(index, 'r:' .. family, now + rttl) end
  return 1

elseif op == 'refresh' then
  local t = redis.call('HMGET', KEYS[1], 'family', 'used')
  if not t[1] then return 0 end
  local family = unquote(t[1])
  local fkey = P .. 'refresh:family:' .. family
  local fam = redis.call('HMGET', fkey, 'session', 'data', 'index')
  if not fam[1] then return 0 end
  local index = fam[3] and cjson.decode(fam[3])
  if t[2] == '1' then
    revoke(family, index, false)
    return -1
  end
  redis.call('HSET', KEYS[1], 'used', 1)
  -- The session the token was issued for ends; the new one takes its data if it still
  -- lives, else the copy the family kept.
  local old = P .. bare(fam[1])
  local live = parse(redis.call('GET', old))
  local data = live and live.data or fam[2]
  redis.call('DEL', old)
  if index then drop(index, fam[1]) end
  local m, rttl = ARGV[4], tonumber(ARGV[8])
  local started = start(P .. bare(m), m, data, fam[3] or nil, index, family,
    tonumber(ARGV[6]), tonumber(ARGV[7]))
  if started ~= 1 then return started end
  local tkey = P .. 'refresh:' .. ARGV[5]
  redis.call('HSET', tkey, 'family', t[1], 'used', 0)
  redis.call('PEXPIRE', tkey, rttl)
  redis.call('HSET', fkey, 'token', '"' .. ARGV[5] .. '"', 'session', m, 'data', data)
  redis.call('PEXPIRE', fkey, rttl)
  if index then index_put(index, 'r:' .. family, now + rttl) end
  return 1
end
return redis.error_reply('unknown session operation ' .. tostring(op))
