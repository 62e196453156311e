-- Delete a key only if it still holds the given value: dropping a corrupt cache entry must
-- not delete a valid value another writer stored in the meantime.
-- KEYS[1]  the key
-- ARGV[1]  the value it was read with
-- Returns  1 if deleted, else 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('UNLINK', KEYS[1])
end
return 0
