-- ARGV[8]: participant, [9]: its update's counter, [10]: the update,
-- [11]: its join notice if this update names it ('' if not), [12]: its leave notice then.
-- Only the counter after the last one numbered is taken, so a participant's
-- updates keep their order however their round trips fail and are retried.
-- {'ok', expired, number ('' for an earlier repeat), epoch}, {'behind', expired,
-- the last counter numbered} (send the ones after it first), or {'gone', expired}.
local id, counter = ARGV[8], tonumber(ARGV[9])
local expired = sweep(now_ms())
if not redis.call('ZSCORE', who_key, id) then
    return {'gone', expired}
end
local done, done_seq = 0, ''
local sent = redis.call('HGET', sent_key, id)
if sent then
    local c, seq = string.match(sent, '^(%d+) (%d+)$')
    done, done_seq = tonumber(c), seq
end
if counter <= done then
    -- A repeat: numbered once already.
    if counter == done then
        return {'ok', expired, done_seq, epoch()}
    end
    return {'ok', expired, '', epoch()}
end
if counter > done + 1 then
    return {'behind', expired, fmt(done)}
end
if ARGV[11] ~= '' then
    append('', ARGV[11])
    redis.call('HSET', bye_key, id, ARGV[12])
end
local seq = append(id, ARGV[10])
redis.call('HSET', sent_key, id, ARGV[9] .. ' ' .. seq)
keep()
return {'ok', expired, seq, epoch()}
