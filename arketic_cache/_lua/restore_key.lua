-- Restore one exported key, atomically: it exists fully written, with its expiry, or not at all.
-- KEYS[1]  the key
-- ARGV[1]  'keep' (an existing key is left alone: return 0) or 'replace'
-- ARGV[2]  the type: string, hash, list, set, zset or stream
-- ARGV[3]  the absolute expiry in unix ms, or '' for none
-- ARGV[4..] the value: string: the bytes; hash: field, value, ...; list and set: the items;
--           zset: score, member, ...; stream: the entry count, then per entry its id, field
--           count, fields and values; the group count, then per group its name and last
--           delivered id; the last generated id or ''.
-- Returns 1 when written, 0 when kept.
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  if ARGV[1] ~= 'replace' then
    return 0
  end
  redis.call('DEL', key)
end
local kind, n = ARGV[2], #ARGV
-- unpack() is bounded by Lua's C stack: push long values in chunks of at most 1000 arguments.
local function push(command, first, step)
  local i = first
  while i <= n do
    local last = math.min(i + step * 500 - 1, n)
    redis.call(command, key, unpack(ARGV, i, last))
    i = last + 1
  end
end
if kind == 'string' then
  redis.call('SET', key, ARGV[4])
elseif kind == 'hash' then
  push('HSET', 4, 2)
elseif kind == 'list' then
  push('RPUSH', 4, 1)
elseif kind == 'set' then
  push('SADD', 4, 1)
elseif kind == 'zset' then
  push('ZADD', 4, 2)
elseif kind == 'stream' then
  local i = 5
  for _ = 1, tonumber(ARGV[4]) do
    local fields = tonumber(ARGV[i + 1])
    redis.call('XADD', key, ARGV[i], unpack(ARGV, i + 2, i + 1 + 2 * fields))
    i = i + 2 + 2 * fields
  end
  local groups = tonumber(ARGV[i])
  for g = 1, groups do
    redis.call('XGROUP', 'CREATE', key, ARGV[i + 2 * g - 1], ARGV[i + 2 * g], 'MKSTREAM')
  end
  i = i + 1 + 2 * groups
  if ARGV[i] ~= '' then
    -- Where the server has XSETID (the embedded backend has not), the last id comes back too.
    redis.pcall('XSETID', key, ARGV[i])
  end
else
  return redis.error_reply('ERR unknown type ' .. kind)
end
if ARGV[3] ~= '' then
  redis.call('PEXPIREAT', key, ARGV[3])
end
return 1
