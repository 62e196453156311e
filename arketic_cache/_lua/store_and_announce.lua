-- Store a cache entry with its TTL and announce the key, atomically and in one round trip.
-- KEYS[1]  the entry
-- ARGV[1]  the envelope (JSON)
-- ARGV[2]  TTL in seconds
-- ARGV[3]  the invalidation channel
-- ARGV[4]  the message announcing the key
-- Returns  1
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
