-- ARGV[5]: participant, [6]: its update's counter, [7]: the update,
-- [8]: its join notice if this update names it ('' if not), [9]: its leave notice then.
-- {'ok', expired, number} (a repeated counter: the number it got), or {'gone', expired}.
local id, counter = ARGV[5], tonumber(ARGV[6])
local expired = sweep(now_ms())
if not redis.call('ZSCORE', who_key, id) then
    return {'gone', expired}
end
local sent = redis.call('HGET', sent_key, id)
if sent then
    local c, seq = string.match(sent, '^(%d+) (%d+)$')
    if tonumber(c) >= counter then
        return {'ok', expired, seq}
    end
end
if ARGV[8] ~= '' then
    append('', ARGV[8])
    redis.call('HSET', bye_key, id, ARGV[9])
end
local seq = append(id, ARGV[7])
redis.call('HSET', sent_key, id, ARGV[6] .. ' ' .. seq)
keep()
return {'ok', expired, seq}
