-- Store a cache entry with its TTL and announce the key, atomically and in one round trip.
-- The announcement is skipped when no other process listens: nobody holds a copy to drop.
-- KEYS[1]  the entry
-- ARGV[1]  the envelope (JSON)
-- ARGV[2]  TTL in seconds
-- ARGV[3]  the invalidation channel
-- ARGV[4]  the message announcing the key
-- ARGV[5]  how many of the channel's subscribers are the caller's own (0 or 1), or -1
--          to announce unasked (a cluster node counts only its own subscribers)
-- Returns  1
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local own = tonumber(ARGV[5])
if own < 0 or redis.call('PUBSUB', 'NUMSUB', ARGV[3])[2] > own then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return 1
