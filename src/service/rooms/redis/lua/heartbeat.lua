-- ARGV[8..]: this replica's participants. Renews them and the room's keys.
-- {expired, participants that were no longer there...}
local now = now_ms()
local reply = {sweep(now)}
for i = 8, #ARGV do
    if redis.call('ZSCORE', who_key, ARGV[i]) then
        redis.call('ZADD', who_key, now + ttl, ARGV[i])
    else
        table.insert(reply, ARGV[i])
    end
end
keep()
return reply
