-- Queue execution ids for workers, each at most once, leaving out ids a worker took
-- recently: their claim may still be under way (the sweeper's push).
--
-- KEYS[1]  ready list
-- KEYS[2]  set of ids currently in the ready list
-- KEYS[3]  processing sorted set (id -> time taken, ms)
-- ARGV[1]  ids taken at or after this time (ms) are left out
-- ARGV[2..] execution ids
--
-- Returns the number of ids added.
local since = tonumber(ARGV[1])
local added = 0
for i = 2, #ARGV do
    local taken = redis.call('ZSCORE', KEYS[3], ARGV[i])
    if not (taken and tonumber(taken) >= since) then
        if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
            redis.call('LPUSH', KEYS[1], ARGV[i])
            added = added + 1
        end
    end
end
return added
