-- Settle ids whose outcome is committed in the store.
--
-- KEYS[1]  processing sorted set
-- KEYS[2]  completed list (bounded)
-- KEYS[3]  failed (dead-letter) list
-- ARGV[1]  most ids the completed list keeps
-- ARGV[2..] pairs: execution id, then 'c' (completed), 'f' (failed) or 'd' (dropped)
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
    end
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
return settled
