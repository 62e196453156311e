-- Claim a group's entries idle for too long, and dead-letter those delivered too often.
-- KEYS[1]  the stream
-- KEYS[2]  the dead-letter stream (ignored when ARGV[5] is 0)
-- ARGV[1]  group, ARGV[2] consumer claiming, ARGV[3] minimum idle time (ms),
-- ARGV[4]  how many to claim at most, ARGV[5] most deliveries allowed (0: no limit),
-- ARGV[6]  the dead-letter stream's TTL (seconds)
-- Returns  {dead-lettered count, {id, {field, value, ...}}, ...}: the entries now the
--          consumer's, each delivered at most ARGV[5] times; the others were copied to the
--          dead-letter stream and acknowledged, in the same step.
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0',
  'COUNT', ARGV[4])[2]
local limit = tonumber(ARGV[5])
local result = {0}
if limit == 0 or #claimed == 0 then
  for _, entry in ipairs(claimed) do
    if entry[2] then result[#result + 1] = entry end
  end
  return result
end
local deliveries = {}
local first, last = claimed[1][1], claimed[#claimed][1]
for _, pending in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], first, last, #claimed + 1000,
    ARGV[2])) do
  deliveries[pending[1]] = tonumber(pending[4])
end
for _, entry in ipairs(claimed) do
  local id, fields = entry[1], entry[2]
  if fields and (deliveries[id] or 0) > limit then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('EXPIRE', KEYS[2], ARGV[6])
    redis.call('XACK', KEYS[1], ARGV[1], id)
    result[1] = result[1] + 1
  elseif fields then
    result[#result + 1] = entry
  end
end
return result
