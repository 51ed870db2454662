-- ARGV[8]: participant, [9]: since ('' for none), [10]: the epoch of since
-- ('' if not given), [11]: most participants, [12]: its join notice ('' for
-- none yet), [13]: its leave notice, [14], [15]: the backlog page's most
-- events and bytes.
-- {'ok', expired, number of the last event before its first delivery, epoch,
-- the first page of the history after since}, or {'range', expired, base,
-- oldest, newest, why ('' | 'none' | 'epoch' | 'ahead')} / {'full', expired, count}.
local id, since, since_epoch, most = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local now = now_ms()
local expired = sweep(now)
if since ~= '' then
    local last = redis.call('HGET', seq_key, 'last')
    if not last then
        return {'range', expired, '', '', '', 'none'}
    end
    local s = tonumber(since)
    if since_epoch ~= '' and since_epoch ~= epoch() then
        return {'range', expired, '', '', last, 'epoch'}
    end
    if since_epoch ~= '' and s > tonumber(last) then
        -- The caller has seen numbers of this epoch that the store no longer
        -- has: it came back older. They are lost, and never issued again in
        -- it (the new epoch's numbers start past the store's, not the
        -- caller's word).
        begin(tonumber(last))
        return {'range', expired, '', '', last, 'ahead'}
    end
    local oldest = tonumber(last) + 1
    local first = redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)
    if #first > 0 then
        oldest = tonumber(string.match(first[1][1], '^(%d+)'))
    end
    if s < oldest - 1 or s > tonumber(last) then
        return {'range', expired, redis.call('HGET', seq_key, 'base'), fmt(oldest), last, ''}
    end
end
local count = redis.call('ZCARD', who_key)
if count >= most then
    return {'full', expired, count}
end
-- What it missed (its first page), read before its own join can trim it from the history.
local backlog = {}
if since ~= '' then
    backlog = page(fmt(tonumber(since) + 1), ARGV[14], tonumber(ARGV[15]))
end
redis.call('ZADD', who_key, now + ttl, id)
redis.call('HSET', bye_key, id, ARGV[13])
local start
if ARGV[12] ~= '' then
    start = append('', ARGV[12])
else
    start = fmt(newest())
end
keep()
return {'ok', expired, start, epoch(), backlog}
