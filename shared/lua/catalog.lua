-- catalog.lua -- the catalogue's version and the cart hint, and what
-- /metrics and the ops console read: queue state, heartbeats, the
-- history the console charts, dead letters.

--[[
catalog_bump: a product was written: bump the catalogue version (every
API process's cache checks it) and drop the product's gate counter.
KEYS: [1] catalog:version.  ARGV: [1] productId ("" for none).
Reply: the new version.
]]
local function catalog_bump(keys, args)
  if args[1] ~= '' then
    redis.call('DEL', RK.GATE_STOCK .. args[1], RK.GATE_RULE .. args[1])
  end
  return redis.call('INCR', keys[1])
end

--[[
cart_hint: remember a cart after a cart answer, unless a newer revision
is already remembered (two answers' hints may arrive out of order).  An
empty cart leaves "<rev>|<cartId>|", which the submit does not trust (it
asks the database).  The API also writes carts from the hint, but only
where the cart is still exactly that revision with those lines.
KEYS: [1] cart:lines:<user>.  ARGV: [1] the cart's revision, [2] its id,
      [3] lines "<productId>:<qty>,...", [4] TTL.
Reply: 1 if stored, 0 if an equal or newer revision was there.
]]
local function cart_hint(keys, args)
  local cur = redis.call('GET', keys[1])
  local rev = cur and tonumber(string.match(cur, '^(%d+)|'))
  if rev and rev >= tonumber(args[1]) then return 0 end
  redis.call('SET', keys[1], args[1] .. '|' .. args[2] .. '|' .. args[3],
    'EX', args[4])
  return 1
end

--[[
metrics_gauges: what /metrics shows of the queue and the workers.
KEYS: [1] checkout:jobs, [2] stats:worker.  ARGV: [1] group.
Reply: {stream length, pending entries, the stats hash as a flat array}.
]]
local function metrics_gauges(keys, args)
  local p = redis.pcall('XPENDING', keys[1], args[1])
  local n = 0
  if type(p) == 'table' then n = p[1] end
  return {redis.call('XLEN', keys[1]), n, redis.call('HGETALL', keys[2])}
end

-- A consumer group's fields on stream (XINFO GROUPS' flat map), or nil
-- while the stream or the group does not exist (no worker has started).
local function group_info(stream, name)
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) ~= 'table' or groups.err then return nil end
  for _, g in ipairs(groups) do
    if field_of(g, 'name') == name then return g end
  end
  return nil
end

--[[
group_read: how many of the stream's entries a group has read.  A group
made at id 0 reports no entries-read until it reads, and Redis cannot
tell after some deletions: then its lag says it, and without a lag every
entry still in the stream counts as unread.
]]
local function group_read(g, added, len)
  local n = tonumber(field_of(g, 'entries-read'))
  if n then return n end
  local lag = tonumber(field_of(g, 'lag'))
  if lag then return added - lag end
  return added - len
end

--[[
queue_state: where the checkout group has read to, in seq terms: the
seq of the last job delivered to a worker (XINFO STREAM's entries-added
and XINFO GROUPS' entries-read, lined up with checkout:seq).  A queued
checkout with seq s has s - that - 1 jobs before it.  O(1): the API asks
once a second, never per checkout.
KEYS: [1] checkout:jobs, [2] checkout:seq.  ARGV: [1] group.
Reply: {seq read so far, stream length}.
]]
local function queue_state(keys, args)
  local seq = tonumber(redis.call('GET', keys[2]) or '0')
  local added, read = seq, seq
  local len = redis.call('XLEN', keys[1])
  local st = redis.pcall('XINFO', 'STREAM', keys[1])
  if type(st) == 'table' and not st.err then
    added = tonumber(field_of(st, 'entries-added')) or seq
    local g = group_info(keys[1], args[1])
    if g then
      read = group_read(g, added, len)
    else
      read = added - len    -- no worker ever started: nothing was read
    end
  end
  return {seq - added + read, len}
end

--[[
heartbeat: a worker or notifier process says it is alive, with its
counters (the ops console's workers view, GET /api/admin/workers).
KEYS: none.  ARGV: [1] its name, [2] kind ("worker", "notifier"),
      [3] now in ms, [4] batches so far, [5] orders so far, [6] ms of
      its last batch (0: none), [7] batches/s, [8] orders/s, [9] TTL s,
      [10] product locks handed between its consumers so far (a
      worker's; worker/handoff.c).
Reply: 1.
]]
local function heartbeat(keys, args)
  local key = RK.PROC .. args[1]
  redis.call('HSET', key, 'name', args[1], 'kind', args[2], 'at', args[3],
    'batches', args[4], 'orders', args[5], 'lastBatchAt', args[6],
    'batchesPerSec', args[7], 'ordersPerSec', args[8])
  if args[10] then redis.call('HSET', key, 'lockHandoffs', args[10]) end
  redis.call('EXPIRE', key, args[9])
  redis.call('SADD', RK.PROCS, args[1])
  return 1
end

--[[
procs_alive: every process whose heartbeat has not expired; the
expired ones are forgotten.
KEYS: none.  ARGV: none.
Reply: one flat HGETALL array per process.
]]
local function procs_alive(keys, args)
  local out = {}
  for _, name in ipairs(redis.call('SMEMBERS', RK.PROCS)) do
    local h = redis.call('HGETALL', RK.PROC .. name)
    if #h == 0 then
      redis.call('SREM', RK.PROCS, name)
    else
      out[#out + 1] = h
    end
  end
  return out
end

--[[
history_tick: one sample a second of what the console charts, whoever
calls first in that second (every worker's sweeper calls): the seq of
submits so far, the orders completed so far and the queue's length.
The last 600 (ten minutes) are kept.
The depth is the jobs not yet done: the group's lag (not delivered)
plus its pending entries (delivered, not acknowledged).
KEYS: [1] stats:history, [2] checkout:jobs.  ARGV: [1] now in seconds,
      [2] the group.
Reply: 1 if this call took the sample, else 0.
]]
local function history_tick(keys, args)
  if redis.call('GET', keys[1] .. ':at') == args[1] then return 0 end
  redis.call('SET', keys[1] .. ':at', args[1])
  local depth = redis.call('XLEN', keys[2])
  local g = group_info(keys[2], args[2])
  if g then
    depth = (tonumber(field_of(g, 'lag')) or 0) +
      (tonumber(field_of(g, 'pending')) or 0)
  end
  redis.call('LPUSH', keys[1], args[1] .. '|' ..
    (redis.call('GET', RK.SEQ) or '0') .. '|' ..
    (redis.call('HGET', RK.STATS, 'completed') or '0') .. '|' ..
    depth)
  redis.call('LTRIM', keys[1], 0, 599)
  return 1
end

--[[
admin_queue: the checkout stream at a glance, with no scan of it:
XLEN, the group's lag, XPENDING's summary and each consumer's pending
count and idle time (XINFO CONSUMERS), the dead letters' count.
KEYS: [1] checkout:jobs, [2] checkout:dead.  ARGV: [1] group.
Reply: {length (acknowledged entries not yet trimmed included), lag (not
      yet delivered, -1 if Redis cannot tell; all of them before any
      worker made the group), pending, oldest pending entry id (or ""),
      dead letters, then per consumer: name, pending, idle ms}.
]]
local function admin_queue(keys, args)
  local out = {redis.call('XLEN', keys[1]), -1, 0, ''}
  local g = group_info(keys[1], args[1])
  if g then
    out[2] = tonumber(field_of(g, 'lag')) or -1
    local p = redis.call('XPENDING', keys[1], args[1])
    out[3] = p[1]
    out[4] = p[2] or ''
  else
    out[2] = out[1]         -- no worker ever started: nothing delivered
  end
  out[5] = redis.call('XLEN', keys[2])
  if g then
    local cs = redis.pcall('XINFO', 'CONSUMERS', keys[1], args[1])
    if type(cs) == 'table' and not cs.err then
      for _, c in ipairs(cs) do
        out[#out + 1] = field_of(c, 'name')
        out[#out + 1] = field_of(c, 'pending')
        out[#out + 1] = field_of(c, 'idle')
      end
    end
  end
  return out
end

--[[
dead_list: the dead letters, oldest first, at most a count.
KEYS: [1] checkout:dead.  ARGV: [1] count.
Reply: {how many there are, the entries (XRANGE's)}.
]]
local function dead_list(keys, args)
  return {redis.call('XLEN', keys[1]),
    redis.call('XRANGE', keys[1], '-', '+', 'COUNT', args[1])}
end

redis.register_function('catalog_bump', catalog_bump)
redis.register_function('cart_hint', cart_hint)
redis.register_function{function_name = 'metrics_gauges',
  callback = metrics_gauges, flags = {'no-writes'}}
redis.register_function{function_name = 'queue_state',
  callback = queue_state, flags = {'no-writes'}}
redis.register_function('heartbeat', heartbeat)
redis.register_function('procs_alive', procs_alive)
redis.register_function('history_tick', history_tick)
redis.register_function{function_name = 'admin_queue',
  callback = admin_queue, flags = {'no-writes'}}
redis.register_function{function_name = 'dead_list',
  callback = dead_list, flags = {'no-writes'}}
