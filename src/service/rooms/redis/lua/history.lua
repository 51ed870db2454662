-- ARGV[5]: the first number wanted. {base, newest, events from it on}; a
-- room without history: {'', '', {}}.
local last = redis.call('HGET', seq_key, 'last')
if not last then
    return {'', '', {}}
end
return {redis.call('HGET', seq_key, 'base'), last, redis.call('XRANGE', log_key, ARGV[5], '+')}
