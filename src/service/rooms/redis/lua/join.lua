-- ARGV[5]: participant, [6]: since ('' for none), [7]: most participants,
-- [8]: its join notice ('' for none yet), [9]: its leave notice.
-- {'ok', expired, number of the last event before its first delivery, history after since}
-- or {'range', expired, base, oldest, newest} / {'full', expired, count}.
local id, since, most = ARGV[5], ARGV[6], tonumber(ARGV[7])
local now = now_ms()
local expired = sweep(now)
if since ~= '' then
    local last = redis.call('HGET', seq_key, 'last')
    if not last then
        return {'range', expired, '', '', ''}
    end
    local oldest = tonumber(last) + 1
    local first = redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)
    if #first > 0 then
        oldest = tonumber(string.match(first[1][1], '^(%d+)'))
    end
    local s = tonumber(since)
    if s < oldest - 1 or s > tonumber(last) then
        return {'range', expired, redis.call('HGET', seq_key, 'base'), fmt(oldest), last}
    end
end
local count = redis.call('ZCARD', who_key)
if count >= most then
    return {'full', expired, count}
end
-- What it missed, read before its own join can trim it from the history.
local backlog = {}
if since ~= '' then
    backlog = redis.call('XRANGE', log_key, fmt(tonumber(since) + 1), '+')
end
redis.call('ZADD', who_key, now + ttl, id)
redis.call('HSET', bye_key, id, ARGV[9])
local start
if ARGV[8] ~= '' then
    start = append('', ARGV[8])
    if since ~= '' then
        table.insert(backlog, redis.call('XRANGE', log_key, start, start)[1])
    end
else
    start = fmt(newest())
end
keep()
return {'ok', expired, start, backlog}
