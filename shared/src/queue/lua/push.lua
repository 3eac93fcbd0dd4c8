-- Queue execution ids for workers, each at most once.
--
-- KEYS[1]  ready list (workers pop from its right end)
-- KEYS[2]  set of ids currently in the ready list
-- ARGV     execution ids
--
-- Returns the number of ids added; an id already waiting in the ready list is skipped,
-- so pushing the same id twice leaves one item.
local added = 0
for i = 1, #ARGV do
    if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
        redis.call('LPUSH', KEYS[1], ARGV[i])
        added = added + 1
    end
end
return added
