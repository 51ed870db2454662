-- Shared by every room script (prepended to each). KEYS: the room's
-- numbers (hash: base, last, epoch), its history (stream, IDs are the
-- numbers), who is in it (zset: participant -> expiry, ms), each
-- participant's leave notice (hash), each participant's last update (hash:
-- "counter number").
-- ARGV[1..4]: the room's channel, history length, linger (ms), presence TTL (ms);
-- [5]: an epoch for a history begun now; [6], [7]: the epoch and the highest
-- number the calling replica has seen in this room ('' for none).
-- publish_command (set before this prelude): PUBLISH, or SPUBLISH on a cluster.
local seq_key, log_key, who_key, bye_key, sent_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local channel, history, linger, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local new_epoch, seen_epoch, seen_high = ARGV[5], ARGV[6], tonumber(ARGV[7])

-- Numbers stay exact: Lua's own tostring would round them to 14 digits.
local function fmt(n)
    return string.format('%d', n)
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Begins a new history: a new epoch, its numbers from the clock
-- (microseconds) and above `above`, the old history gone. Returns its base.
local function begin(above)
    local t = redis.call('TIME')
    local base = tonumber(t[1]) * 1000000 + tonumber(t[2])
    if above and base <= above then
        base = above + 1
    end
    redis.call('DEL', log_key)
    redis.call('HSET', seq_key, 'base', fmt(base), 'last', fmt(base), 'epoch', new_epoch)
    return base
end

-- The room's newest number; a room without one begins a new history.
local function newest()
    local last = redis.call('HGET', seq_key, 'last')
    if last then
        return tonumber(last)
    end
    return begin(nil)
end

-- The room's epoch ('' while it has no history).
local function epoch()
    return redis.call('HGET', seq_key, 'epoch') or ''
end

-- Numbers an event, keeps it in the history and publishes it: one step.
local function append(sender, payload)
    newest()
    local seq = fmt(redis.call('HINCRBY', seq_key, 'last', 1))
    redis.call('XADD', log_key, 'MAXLEN', history, seq .. '-0', 's', sender, 'u', payload)
    redis.call(publish_command, channel, seq .. '\n' .. epoch() .. '\n' .. sender .. '\n' .. payload)
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

-- The events from number `from` on, in a page of at most `count` events and,
-- past its first, `budget` bytes: one reply never stalls the connection.
local function page(from, count, budget)
    local events = redis.call('XRANGE', log_key, from, '+', 'COUNT', count)
    local bytes = 0
    for i, entry in ipairs(events) do
        local fields = entry[2]
        for j = 2, #fields, 2 do
            bytes = bytes + #fields[j]
        end
        if bytes > budget and i > 1 then
            local kept = {}
            for k = 1, i - 1 do
                kept[k] = events[k]
            end
            return kept
        end
    end
    return events
end

-- The room outlives its last participant by the linger.
local function keep()
    for _, key in ipairs(KEYS) do
        redis.call('PEXPIRE', key, linger)
    end
end

-- Numbers never go back within an epoch: a store that came back older (a
-- restart from a snapshot, a failover to a replica that was behind) than what
-- a replica has seen of this epoch begins a new one before numbering anything.
do
    local state = redis.call('HMGET', seq_key, 'epoch', 'last')
    if seen_high and state[1] == seen_epoch and tonumber(state[2]) < seen_high then
        begin(seen_high)
    end
end
