-- Release ids recorded ahead of time whose fire time has come.
--
-- KEYS[1]  upcoming sorted set (id -> fire time, ms)
-- KEYS[2]  ready list
-- KEYS[3]  set of ids currently in the ready list
-- ARGV[1]  now, in milliseconds since the epoch (the storage clock)
-- ARGV[2]  most ids to release
--
-- Returns the number of ids taken out of the upcoming set; each joins the ready list once.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #ids do
    redis.call('ZREM', KEYS[1], ids[i])
    if redis.call('SADD', KEYS[3], ids[i]) == 1 then
        redis.call('LPUSH', KEYS[2], ids[i])
    end
end
return #ids
