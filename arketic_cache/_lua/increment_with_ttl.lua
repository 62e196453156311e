-- Add to a counter; a counter without a TTL (i.e. just created) gets one in the same step.
-- KEYS[1]  the counter
-- ARGV[1]  amount to add (integer, may be negative)
-- ARGV[2]  TTL in seconds for a counter that has none
-- Returns  the new value (integer). A non-integer value fails with Redis' own error.
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) == -1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return value
