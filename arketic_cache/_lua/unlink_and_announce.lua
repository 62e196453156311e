-- Delete a cache entry and announce the key, atomically and in one round trip.
-- The announcement is skipped when no other process listens: nobody holds a copy to drop.
-- KEYS[1]  the entry
-- ARGV[1]  the invalidation channel
-- ARGV[2]  the message announcing the key
-- ARGV[3]  how many of the channel's subscribers are the caller's own (0 or 1), or -1
--          to announce unasked (a cluster node counts only its own subscribers)
-- Returns  1 if the entry existed, else 0
local removed = redis.call('UNLINK', KEYS[1])
local own = tonumber(ARGV[3])
if own < 0 or redis.call('PUBSUB', 'NUMSUB', ARGV[1])[2] > own then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return removed
