-- Update fields of an existing hash and refresh its TTL; a missing hash is left missing
-- (a partial update must not create a record without its other fields).
-- KEYS[1]  the hash
-- ARGV[1]  TTL in seconds
-- ARGV[2..] field, value, field, value, ...
-- Returns  1 if updated, 0 if the hash does not exist
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
