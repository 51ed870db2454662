-- ARGV[8]: participant, [9]: the notice to give instead of its leave notice ('' for that).
-- {'ok', number of its notice or '', epoch}, or {'gone'} if it had left already.
local id = ARGV[8]
if redis.call('ZREM', who_key, id) == 0 then
    return {'gone'}
end
local bye = redis.call('HGET', bye_key, id)
redis.call('HDEL', bye_key, id)
redis.call('HDEL', sent_key, id)
if ARGV[9] ~= '' then
    bye = ARGV[9]
end
local seq = ''
if bye and bye ~= '' then
    seq = append('', bye)
end
keep()
return {'ok', seq, epoch()}
