-- Take up to ARGV[1] ids for one worker, oldest first.
--
-- KEYS[1]  ready list
-- KEYS[2]  set of ids currently in the ready list
-- KEYS[3]  processing sorted set (id -> time taken, ms)
-- ARGV[1]  most ids to take
-- ARGV[2]  now, in milliseconds since the epoch
--
-- Returns the ids taken. They leave the ready list and its set, and enter processing,
-- in one step.
local ids = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then
    return {}
end
for i = 1, #ids do
    redis.call('SREM', KEYS[2], ids[i])
    redis.call('ZADD', KEYS[3], ARGV[2], ids[i])
end
return ids
