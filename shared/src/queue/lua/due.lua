-- Take the scheduled ids that are due, oldest first.
--
-- KEYS[1]  scheduled sorted set (id -> due time, ms)
-- ARGV[1]  now, in milliseconds since the epoch
-- ARGV[2]  most ids to take
--
-- Returns the ids taken; they leave the scheduled set. The caller moves them on to the
-- ready list once the store agrees they are still wanted.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #ids do
    redis.call('ZREM', KEYS[1], ids[i])
end
return ids
