-- Delete a cache entry and announce the key, atomically and in one round trip.
-- KEYS[1]  the entry
-- ARGV[1]  the invalidation channel
-- ARGV[2]  the message announcing the key
-- Returns  1 if the entry existed, else 0
local removed = redis.call('UNLINK', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return removed
