-- Release a computation lease if we still hold it, and wake the processes waiting for it.
-- KEYS[1]  the lease key
-- ARGV[1]  our lease token
-- ARGV[2]  the invalidation channel
-- ARGV[3]  the message announcing the key (waiters re-read it, or take the lease over)
-- Returns  1 if the lease was ours and is released, else 0
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  released = redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return released
