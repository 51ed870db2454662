-- ARGV[8]: the first number wanted, [9], [10]: the page's most events and bytes.
-- {base, newest, epoch, a page of events from it on}; a room without history: {'', '', '', {}}.
local last = redis.call('HGET', seq_key, 'last')
if not last then
    return {'', '', '', {}}
end
return {redis.call('HGET', seq_key, 'base'), last, epoch(), page(ARGV[8], ARGV[9], tonumber(ARGV[10]))}
