-- Settle ids whose outcome is committed in the store.
--
-- KEYS[1]  processing sorted set
-- KEYS[2]  completed list (bounded)
-- KEYS[3]  failed (dead-letter) list
-- KEYS[4]  scheduled sorted set (id -> due time, ms)
-- ARGV[1]  most ids the completed list keeps
-- ARGV[2..] pairs: execution id, then how it settled:
--           'c' completed, 'f' failed, 'd' dropped, or 'r:<due ms>' retry at that time
--
-- Returns the number of ids that were in processing.
local settled = 0
for i = 2, #ARGV, 2 do
    local id, kind = ARGV[i], ARGV[i + 1]
    settled = settled + redis.call('ZREM', KEYS[1], id)
    if kind == 'c' then
        redis.call('LPUSH', KEYS[2], id)
    elseif kind == 'f' then
        redis.call('LPUSH', KEYS[3], id)
    elseif string.sub(kind, 1, 2) == 'r:' then
        redis.call('ZADD', KEYS[4], tonumber(string.sub(kind, 3)), id)
    end
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
return settled
