-- Shared by every room script (prepended to each). KEYS: the room's
-- numbers (hash: base, last), its history (stream, IDs are the numbers),
-- who is in it (zset: participant -> expiry, ms), each participant's leave
-- notice (hash), each participant's last update (hash: "counter number").
-- ARGV[1..4]: the room's channel, history length, linger (ms), presence TTL (ms).
-- publish_command (set before this prelude): PUBLISH, or SPUBLISH on a cluster.
local seq_key, log_key, who_key, bye_key, sent_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel, history, linger, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

-- Numbers stay exact: Lua's own tostring would round them to 14 digits.
local function fmt(n)
    return string.format('%d', n)
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The room's newest number. A room without one starts a new history at the
-- clock (microseconds), so numbers are never reused, even after a loss.
local function newest()
    local last = redis.call('HGET', seq_key, 'last')
    if last then
        return tonumber(last)
    end
    local t = redis.call('TIME')
    local base = fmt(tonumber(t[1]) * 1000000 + tonumber(t[2]))
    redis.call('DEL', log_key)
    redis.call('HSET', seq_key, 'base', base, 'last', base)
    return tonumber(base)
end

-- Numbers an event, keeps it in the history and publishes it: one step.
local function append(sender, payload)
    newest()
    local seq = fmt(redis.call('HINCRBY', seq_key, 'last', 1))
    redis.call('XADD', log_key, 'MAXLEN', history, seq .. '-0', 's', sender, 'u', payload)
    redis.call(publish_command, channel, seq .. '\n' .. sender .. '\n' .. payload)
    return seq
end

-- Announces (once: ZREM decides) everyone whose heartbeat has expired.
local function sweep(now)
    local expired = redis.call('ZRANGEBYSCORE', who_key, '-inf', now)
    for _, id in ipairs(expired) do
        redis.call('ZREM', who_key, id)
        local bye = redis.call('HGET', bye_key, id)
        redis.call('HDEL', bye_key, id)
        redis.call('HDEL', sent_key, id)
        if bye and bye ~= '' then
            append('', bye)
        end
    end
    return #expired
end

-- The room outlives its last participant by the linger.
local function keep()
    for _, key in ipairs(KEYS) do
        redis.call('PEXPIRE', key, linger)
    end
end
