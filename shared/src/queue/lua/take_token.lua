-- Take one token from a rate-limit bucket (token bucket, refilled continuously).
--
-- KEYS[1]  the bucket: a hash of tokens left and when it was last touched
-- ARGV[1]  capacity (the burst)
-- ARGV[2]  tokens added per second
--
-- Returns {1, 0} when a token was taken, or {0, ms} with how long until one is there.
-- Redis's own clock is used, so every API instance shares one bucket and one time.
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local taken, wait = 0, 0
if tokens >= 1 then
    tokens = tokens - 1
    taken = 1
else
    wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return {taken, wait}
