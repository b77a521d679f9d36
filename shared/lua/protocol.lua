--[[
protocol.lua -- the Redis side of the checkout protocol: submit, a
worker's batch (begin, finish), the stock gate, the waitlist, locks and
dead letters.

The library: shared/lua/*.lua (common, auth, protocol, catalog, in that
order) are one library of Redis 7 functions, compiled into every
program (shared/protocol.c).  Only `shopctl migrate` loads it (FUNCTION
LOAD REPLACE); the others check on connecting that Redis holds exactly
their build of it, so the API, the workers and shopctl always call the
same code.  checkout:seq (RK.SEQ) counts every XADD to the checkout
stream: a checkout's "seq" field is its place in that count, which
queue_state turns into a position.

The keys are named in shared/redis.h, once: the build turns its RK_
names into the RK table the functions use (RK.STREAM is RK_STREAM),
and refuses a key spelled out in the Lua or a function the C does not
name (scripts/lua_library.py).  What each key holds is said there.

States of a checkout, in rank order: queued (1) < processing (2) <
completed = failed (3, final).  A final status is never overwritten.

The functions build gate key names from product ids, so the library
runs on one Redis primary (Sentinel), not on Redis Cluster.

The stock gate: gate:stock:<pid> mirrors the product's stock in MongoDB
minus the units reserved by checkouts not yet settled.  A reservation
takes units from it; settling a failed checkout returns them, settling
a completed one returns only what the order did not use.  A missing
counter is seeded from MongoDB (gate_seed_begin, gate_seed_set); every
product write deletes it (catalog_bump), so the next reservation seeds
it again.  Its errors only ever lean towards admitting too many, which
MongoDB then refuses: see gate_seed_set.
]]

--[[
checkout_submit: record a checkout and queue its job, in one call.
KEYS: [1] checkout:<id>, [2] checkout:jobs, [3] the Idempotency-Key's
      (protocol_idem_key(); any key when ARGV[7] is empty),
      [4] cart:lines:<user>,
      [5] auth:epoch:<user>, [6] auth:revoked:<token signature>,
      [7] rl:submit:<user>
ARGV: [1] id, [2] userId, [3] rid, [4] the queued body, [5] status TTL,
      [6] QUEUE_MAX, [7] hash of the request body ("" without an
      Idempotency-Key), [8] key TTL, [9] createdAt, [10] the cart's lines
      ("" to take them from the hint), [11] TTL of a pending key,
      [12] the token's epoch ("ver"), or "-" when the API checked the
      token less than a second ago, [13] submits allowed per window,
      [14] the window in ms, [15] now in ms, [16] "1" to be waitlisted
      rather than fail out_of_stock, else "", [17] "1" to keep the
      checkout's place in line (QUEUE_POSITIONS)
Reply: {"queued"}; {"replay", id}; {"mismatch"} (the key was used with
      another body); {"pending"} (another request with the key is being
      recorded); {"nocart"} (no hint: read the cart from the database
      and call again with its lines; the key, if any, is now pending);
      {"full"} (the stream holds QUEUE_MAX jobs); {"revoked"} (the token
      was logged out, or its user's epoch moved on); {"noepoch"} (Redis
      does not know the user's epoch: read it from the database, set it,
      call again); {"limited", ms} (the user's submit bucket is empty:
      retry in ms).  A replay is answered before the bucket is touched.
]]
local function checkout_submit(keys, args)
  if args[12] ~= '-' then
    local epoch, revoked = token_read(keys[5], keys[6])
    if revoked then return {'revoked'} end
    if not epoch then return {'noepoch'} end
    if epoch ~= args[12] then return {'revoked'} end
  end
  local haskey = args[7] ~= ''
  if haskey then
    local v = redis.call('GET', keys[3])
    if v then
      -- "p|<hash>" or "d|<hash>|<id>" (protocol.h); a build before
      -- wrote "pending|" and "done|", which shopctl migrate converts.
      local kind, hash, id = string.match(v, '^(%a)%a*|([^|]*)|?(.*)$')
      if hash ~= args[7] then return {'mismatch'} end
      if kind == 'd' then return {'replay', id} end
      if args[10] == '' then return {'pending'} end
      -- pending with lines: our own marker, set by "nocart" below
    end
  end
  -- Lines given: the second call after "nocart", already counted.
  if args[10] == '' then
    local wait = take_token(keys[7], tonumber(args[13]),
      tonumber(args[14]), tonumber(args[15]))
    if wait > 0 then return {'limited', wait} end
  end
  local lines = args[10]
  if lines == '' then
    local hint = redis.call('GET', keys[4])
    lines = hint and string.match(hint, '^%d+|%x*|(.+)$')
    if not lines then
      if haskey then
        redis.call('SET', keys[3], 'p|' .. args[7], 'EX', args[11])
      end
      return {'nocart'}
    end
  end
  if redis.call('XLEN', keys[2]) >= tonumber(args[6]) then
    if haskey then redis.call('DEL', keys[3]) end
    return {'full'}
  end
  local f = {'userId', args[2], 'status', 'queued', 'body', args[4],
    'rid', args[3]}
  if args[17] == '1' then
    f[9], f[10] = 'seq', redis.call('INCR', RK.SEQ)
  end
  redis.call('HSET', keys[1], unpack(f))
  redis.call('EXPIRE', keys[1], args[5])
  redis.call('XADD', keys[2], '*', unpack(job_fields(args[1], args[2],
    args[3], args[9], lines, args[16] == '1')))
  if haskey then
    redis.call('SET', keys[3], 'd|' .. args[7] .. '|' .. args[1],
      'EX', args[8])
  end
  return {'queued'}
end

--[[
checkout_unidem: forget a pending Idempotency-Key (the submit failed).
KEYS: [1] the key's (protocol_idem_key()).  ARGV: [1] hash of the body.
Reply: 1 if it was ours and is gone, else 0.
]]
local function checkout_unidem(keys, args)
  if redis.call('GET', keys[1]) == 'p|' .. args[1] then
    return redis.call('DEL', keys[1])
  end
  return 0
end

-- Mark the checkout at key (its status cur, not final) processing, its
-- body to be published with the batch's (events); the reply as
-- batch_begin's.
local function mark(key, cur, body, user, events)
  redis.call('HSET', key, 'status', 'processing', 'body', body,
    'userId', user)
  events[#events + 1] = body
  if cur == 'queued' then return 'first' end
  return 'again'
end

-- Publish a batch's status bodies on channel as one message, a body a
-- line (status bodies are compact JSON: no newline inside), so that a
-- batch costs one PUBLISH, not one per checkout.
local function publish_all(channel, events)
  if #events > 0 then
    redis.call('PUBLISH', channel, table.concat(events, '\n'))
  end
end

-- Record a checkout's new status at key (its body, its user), kept ttl
-- seconds, its body to be published with the batch's (events).
local function record(key, status, body, user, ttl, events)
  redis.call('HSET', key, 'status', status, 'body', body, 'userId', user)
  redis.call('EXPIRE', key, ttl)
  events[#events + 1] = body
end

-- A customer's units of a limited product (gate:user:<pid>), counted
-- only where a reservation counted them: less by units, never below 0.
local function user_less(pid, user, units)
  if units <= 0 then return end
  local key = RK.GATE_USER .. pid
  local cur = tonumber(redis.call('HGET', key, user) or '')
  if not cur then return end
  if cur - units > 0 then
    redis.call('HSET', key, user, cur - units)
  else
    redis.call('HDEL', key, user)
  end
end

-- Settle checkout id's reservation; ordered: productId -> units ordered
-- (nil when the checkout failed: everything goes back).  Its keys and
-- fields to delete go to done (done_deletes writes them for the batch).
local function settle(id, user, ordered, done)
  local resv = RK.GATE_RESV .. id
  local held = redis.call('HGETALL', resv)
  for i = 1, #held, 2 do
    local pid, units = held[i], tonumber(held[i + 1])
    local back = units - ((ordered and ordered[pid]) or 0)
    if back > 0 then
      local key = RK.GATE_STOCK .. pid
      local cur = redis.call('GET', key)
      if cur and cur ~= 'gone' then redis.call('INCRBY', key, back) end
      user_less(pid, user, back)
    end
    local ids = done.unheld[pid] or {}
    ids[#ids + 1] = id
    done.unheld[pid] = ids
  end
  -- Most failures held nothing (the gate refused them): no DEL then.
  if #held > 0 then done.dels[#done.dels + 1] = resv end
end

-- A batch's deletes, one command per kind rather than one per job:
-- nothing in batch_finish reads these keys again.
local function done_deletes(done)
  for pid, ids in pairs(done.unheld) do
    redis.call('HDEL', RK.GATE_HELD .. pid, unpack(ids))
  end
  if #done.dels > 0 then redis.call('DEL', unpack(done.dels)) end
end

-- The dead-letter entry of a job: why, and the job as it was submitted
-- (copied from the stream, where it still is), so it can be replayed.
local function dead_letter(keys, msgid, id, user, reason, deliveries)
  local entry = {'msgid', msgid, 'checkoutId', id, 'userId', user,
    'reason', reason, 'deliveries', deliveries}
  local job = redis.call('XRANGE', keys[1], msgid, msgid)[1]
  if job then
    for k = 1, #job[2], 2 do
      local f = job[2][k]
      if f ~= 'checkoutId' and f ~= 'userId' then
        entry[#entry + 1] = f
        entry[#entry + 1] = job[2][k + 1]
      end
    end
  end
  redis.call('XADD', keys[4], '*', unpack(entry))
end

-- Waitlist checkout id for product pid (status waitlisted, body given):
-- kept in arrival order (the first time it was waitlisted) with what
-- requeueing it needs.
local function waitlist_add(id, pid, created, lines)
  local now = redis.call('TIME')
  local ms = now[1] * 1000 + math.floor(now[2] / 1000)
  redis.call('HSET', RK.CHECKOUT .. id, 'wlpid', pid, 'lines', lines,
    'createdAt', created)
  redis.call('ZADD', RK.WAITLIST .. pid, 'NX', ms, id)
  redis.call('SADD', RK.WAITLISTS, pid)
end

-- The stream entries pending with the finishing consumer (args[7]), as
-- a set of msgids: one XPENDING for the batch.  At most n + 64 of them,
-- the oldest first; moved() asks about any other entry alone.
local function pending_mine(keys, args, n)
  local mine = {}
  for _, p in ipairs(redis.call('XPENDING', keys[1], args[1], '-', '+',
      n + 64, args[7])) do
    mine[p[1]] = true
  end
  return mine
end

-- Is the job's stream entry pending with another consumer?  It was
-- reclaimed from this one (cut off from Redis for longer than
-- RECLAIM_IDLE_MS, as behind a partition): the new owner decides it.
-- An entry not pending with this one (rare) is looked up alone.
local function moved(keys, args, msgid, mine)
  if mine[msgid] then return false end
  local p = redis.call('XPENDING', keys[1], args[1], msgid, msgid, 1)[1]
  return p ~= nil and p[2] ~= args[7]
end

-- Record one job's result (see batch_finish); the status found before.
-- Its count, its XACK and its body to publish are left in done, for the
-- whole batch.
local function finish(keys, args, j, done)
  local id, user, status, body = args[j + 1], args[j + 2], args[j + 3],
    args[j + 4]
  local key = RK.CHECKOUT .. id
  if moved(keys, args, args[j], done.mine) then return 'moved' end
  local cur = redis.call('HGET', key, 'status')
  if not is_final(cur) and status ~= '' then
    -- Final statuses are read in the minutes after (args[2]); a
    -- waitlisted one stays as long as a queued one (args[8]), and so
    -- does a dead-lettered failure, for its operator's replay.
    local brief = is_final(status) and args[j + 5] == ''
    record(key, status, body, user, brief and args[2] or args[8],
      done.events)
    done.counts[status] = (done.counts[status] or 0) + 1
    local ordered = nil
    if status == 'completed' then
      ordered = {}
      for _, l in ipairs(split_lines(args[j + 6])) do ordered[l[1]] = l[2] end
      done.dels[#done.dels + 1] = RK.CART_LINES .. user
    elseif status == 'waitlisted' then
      local pid, created = string.match(args[j + 9], '^(%x+)|(.*)$')
      waitlist_add(id, pid, created, args[j + 6])
    end
    settle(id, user, ordered, done)
    if args[j + 5] ~= '' then
      -- This failure is the one a replay may take back (dlq_replay).
      redis.call('HSET', key, 'dead', args[j])
      dead_letter(keys, args[j], id, user, args[j + 5], args[j + 8])
      done.counts.dead_lettered = (done.counts.dead_lettered or 0) + 1
    end
  end
  done.acks[#done.acks + 1] = args[j]
  if args[j + 7] ~= '' and
      redis.call('GET', RK.LOCK .. user) == args[j + 7] then
    done.dels[#done.dels + 1] = RK.LOCK .. user
  end
  return cur or ''
end

--[[
batch_finish: record each job's result, publish it (the batch's in one
message, as batch_begin's), settle its stock reservation, XACK it and
release its user's lock, for a whole batch in one call: a job is
acknowledged only together with its result.  A final status is never
overwritten (then the job is only acknowledged); an empty status only
acknowledges.  Counts the batch in stats:worker.
KEYS: [1] checkout:jobs, [2] stats:worker, [3] catalog:stock,
      [4] checkout:dead
ARGV: [1] group, [2] TTL of a final status (CHECKOUT_FINAL_TTL),
      [3] events channel, [4] the batch's size, [5] its size bucket
      ("batch_le_<n>"), [6] how many the gate refused, [7] the consumer
      finishing (a job another consumer holds now is left to it:
      "moved"), [8] TTL of a waitlisted or dead-lettered status
      (CHECKOUT_TTL), then ten per job: msgid, checkoutId,
      userId, status,
      body, dead-letter reason ("" if none), lines "<productId>:<qty>,..."
      (the order's when completed, the job's when waitlisted, else ""),
      lock token ("" if it holds none), deliveries so far ("-1" if not
      known), "<productId>|<createdAt>" of a waitlisted one (else "").
A waitlisted checkout (status "waitlisted": out of stock, and its buyer
asked to wait) joins that product's waitlist (waitlist_serve).
Reply: per job, the status found before ("" if none), or "moved".
]]
local function batch_finish(keys, args)
  local out = {}
  -- Counted, acknowledged and published once for the batch, not once
  -- per job.
  local done = {counts = {}, acks = {}, events = {}, dels = {},
    unheld = {}, mine = pending_mine(keys, args, (#args - 8) / 10)}
  for j = 9, #args, 10 do
    out[#out + 1] = finish(keys, args, j, done)
  end
  done_deletes(done)
  publish_all(args[3], done.events)
  for status, n in pairs(done.counts) do
    redis.call('HINCRBY', keys[2], status, n)
  end
  -- The catalog's stock moved: once for the batch, by its orders.
  if done.counts.completed then
    redis.call('INCRBY', keys[3], done.counts.completed)
  end
  if #done.acks > 0 then
    redis.call('XACK', keys[1], args[1], unpack(done.acks))
  end
  if tonumber(args[4]) > 0 then
    redis.call('HINCRBY', keys[2], 'batches', 1)
    redis.call('HINCRBY', keys[2], 'batched', args[4])
    redis.call('HINCRBY', keys[2], args[5], 1)
  end
  if args[6] ~= '0' then
    redis.call('HINCRBY', keys[2], 'gate_refused', args[6])
  end
  return out
end

--[[
checkout_requeue: put a job at the back of the stream (its user is busy).
KEYS: [1] checkout:jobs.  ARGV: [1] group, [2] msgid, [3] checkoutId,
      [4] userId, [5] rid, [6] createdAt, [7] lines, [8] "1" if it may
      be waitlisted.
Reply: the new entry's id.
]]
local function checkout_requeue(keys, args)
  local id = redis.call('XADD', keys[1], '*', unpack(job_fields(args[3],
    args[4], args[5], args[6], args[7], args[8] == '1')))
  redis.call('HSET', RK.CHECKOUT .. args[3], 'seq', redis.call('INCR', RK.SEQ))
  redis.call('XACK', keys[1], args[1], args[2])
  return id
end

-- The sale rules of a product as the seed stored them
-- ("<startsMs>|<endsMs>|<limit>", each part empty when not set).
local function rules_of(pid)
  local v = redis.call('GET', RK.GATE_RULE .. pid)
  if not v then return nil end
  local starts, ends, limit = string.match(v, '^(%d*)|(%d*)|(%d*)$')
  return {starts = tonumber(starts), ends = tonumber(ends),
    limit = tonumber(limit)}
end

-- What one call has read of the gate, so that a batch reads each
-- product's counter and rules once: stock[pid], the counter (kept in
-- step with the call's own reservations), and rules[pid] (false: none
-- stored, for both); and what its reservations took, written once per
-- product by gate_write: taken[pid], units off the counter, and
-- held[pid], gate:held's checkoutId, units pairs.
local function gate_view()
  return {stock = {}, rules = {}, taken = {}, held = {}}
end

local function view_stock(g, pid)
  if g.stock[pid] == nil then
    g.stock[pid] = redis.call('GET', RK.GATE_STOCK .. pid) or false
  end
  return g.stock[pid] or nil
end

local function view_rules(g, pid)
  if g.rules[pid] == nil then g.rules[pid] = rules_of(pid) or false end
  return g.rules[pid] or nil
end

-- Why line l ({pid, units}) of user's checkout cannot be reserved at
-- now, its counter at v, or nil: {"gone"|"notstarted"|"ended"|"limit"|
-- "short", pid, ...}.
local function refusal(g, l, v, user, now)
  if v == 'gone' then return {'gone', l[1]} end
  local r = view_rules(g, l[1])
  if r and r.starts and now < r.starts then
    return {'notstarted', l[1], tostring(r.starts)}
  end
  if r and r.ends and now >= r.ends then return {'ended', l[1]} end
  if r and r.limit then
    local held = tonumber(redis.call('HGET', RK.GATE_USER .. l[1], user)
      or '0')
    if held + l[2] > r.limit then
      return {'limit', l[1], tostring(r.limit), tostring(held)}
    end
  end
  if tonumber(v) < l[2] then return {'short', l[1]} end
  return nil
end

-- Reserve lines for checkout id of user (every refusal checked first,
-- so each counter is in g.stock); gate_write() writes the counters.
local function reserve(g, id, user, lines)
  for _, l in ipairs(lines) do
    local held = g.held[l[1]] or {}
    g.stock[l[1]] = tonumber(g.stock[l[1]]) - l[2]
    g.taken[l[1]] = (g.taken[l[1]] or 0) + l[2]
    held[#held + 1] = id
    held[#held + 1] = l[2]
    g.held[l[1]] = held
    redis.call('HSET', RK.GATE_RESV .. id, l[1], l[2])
    local r = view_rules(g, l[1])
    if r and r.limit then
      redis.call('HINCRBY', RK.GATE_USER .. l[1], user, l[2])
    end
  end
end

-- Write what g's reservations took: one DECRBY and one HSET a product,
-- not one each a checkout.
local function gate_write(g)
  for pid, units in pairs(g.taken) do
    redis.call('DECRBY', RK.GATE_STOCK .. pid, units)
    redis.call('HSET', RK.GATE_HELD .. pid, unpack(g.held[pid]))
  end
end

--[[
gate_reserve: reserve the lines of several checkouts, in the order
given (stream order).  A checkout is reserved whole or not at all; one
that already holds a reservation (a redelivery) keeps it.  The sale
rules the seed stored with each counter are checked here too, so a
refusal costs no MongoDB operation.
KEYS: none (gate keys are built from the ids).
ARGV: [1] n, [2] now in ms, then for each checkout: id, userId, the ms
      it was submitted at (sale windows judge that time, so that time
      spent in the queue changes no outcome), "1" if this is its first
      delivery (batch_begin said "first": it cannot hold a reservation
      yet) else "", number of lines k, then k pairs productId, units.
Reply: one entry per checkout: {"ok"}; {"short", productId} (not enough
      left); {"gone", productId} (deleted); {"notstarted", productId,
      startsMs}; {"ended", productId}; {"limit", productId, limit,
      held} (perCustomerLimit); {"seed", productId...} (no counter yet:
      seed them, then ask again).
]]
local function gate_reserve(keys, args)
  local out, i, g = {}, 3, gate_view()
  for c = 1, tonumber(args[1]) do
    local id, user, now, first, k = args[i], args[i + 1],
      tonumber(args[i + 2]), args[i + 3] == '1', tonumber(args[i + 4])
    local lines = {}
    for j = 1, k do
      lines[j] = {args[i + 3 + 2 * j], tonumber(args[i + 4 + 2 * j])}
    end
    i = i + 5 + 2 * k
    if not first and redis.call('EXISTS', RK.GATE_RESV .. id) == 1 then
      out[c] = {'ok'}
    else
      local missing, bad = {'seed'}, nil
      for _, l in ipairs(lines) do
        local v = view_stock(g, l[1])
        if not v then
          missing[#missing + 1] = l[1]
        elseif not bad then
          bad = refusal(g, l, v, user, now)
        end
      end
      if #missing > 1 then
        out[c] = missing
      elseif bad then
        out[c] = bad
      else
        reserve(g, id, user, lines)
        out[c] = {'ok'}
      end
    end
  end
  gate_write(g)
  return out
end

-- Take user's lock for token (ttl ms): whether it is ours.  Already
-- holding that token means this call repeats one whose answer was lost
-- (a dropped connection, a failover before WAIT): the lock is ours.
local function lock_user(user, token, ttl)
  local key = RK.LOCK .. user
  return redis.call('SET', key, token, 'NX', 'PX', ttl) ~= false or
    redis.call('GET', key) == token
end

-- Job j of batch_begin's args (at i), its record at key: if its one
-- line is short of stock at the gate and it is still queued (no
-- delivery got further), record it failed (its body given), publish
-- its processing body and that one and leave its entry to acknowledge
-- (acks).  No user lock is taken: the lock keeps a user's checkouts
-- from being placed at once, and this one places nothing.  Whether it
-- was refused.
local function refused_now(g, key, args, i, events, acks)
  local pid, units = string.match(args[i + 6], '^(%x+):(%d+)$')
  local v = pid and view_stock(g, pid)
  if not v then return false end
  local user = args[i + 1]
  local bad = refusal(g, {pid, tonumber(units)}, v, user,
    tonumber(args[i + 5]))
  if not bad or bad[1] ~= 'short' or
      redis.call('HGET', key, 'status') ~= 'queued' then
    return false
  end
  events[#events + 1] = args[i + 3]
  record(key, 'failed', args[i + 7], user, args[4], events)
  acks[#acks + 1] = args[i + 4]
  return true
end

--[[
batch_begin: a worker starts on a batch: take each job's user lock
(SET lock:user:<id> <token> NX PX ttl) and mark the checkouts it got
processing, in one call.  A job on its first delivery whose one line
the gate refuses as short of stock is finished here, as batch_finish
would: recorded failed, acknowledged and counted, without its user's
lock (a sold-out sale is nearly all such jobs: each costs one call, not
three, and no lock written and deleted).  The bodies are published in
one message.  A lock already held with the job's own token is its own
(the call is being repeated).
KEYS: [1] checkout:jobs, [2] stats:worker.
ARGV: [1] lock TTL in ms, [2] the events channel, [3] group, [4] TTL of
      a final status (CHECKOUT_FINAL_TTL), then eight per job:
      checkoutId, userId, lock token, the processing body, msgid, the
      ms it was submitted at, and, for a job the gate may finish here
      (one line, not waitlisted, not a replay or a dead letter), that
      line "<productId>:<units>" and its out_of_stock body (else "" and
      "").
Reply: one per job: "busy" (another holds its user's lock: nothing
      done); "completed" or "failed" (already final: nothing changed,
      only acknowledge it); "first" (it was queued: no delivery got this
      far before, so no order can exist); "again" (look for an order);
      "refused" (finished here: failed out_of_stock, acknowledged; its
      user's lock was not taken).
]]
local function batch_begin(keys, args)
  local out, events, acks, g = {}, {}, {}, gate_view()
  for i = 5, #args, 8 do
    local key, user = RK.CHECKOUT .. args[i], args[i + 1]
    local got = 'busy'
    if args[i + 6] ~= '' and refused_now(g, key, args, i, events, acks) then
      got = 'refused'
    elseif lock_user(user, args[i + 2], args[1]) then
      local cur = redis.call('HGET', key, 'status')
      if is_final(cur) then
        got = cur
      else
        got = mark(key, cur, args[i + 3], user, events)
      end
    end
    out[#out + 1] = got
  end
  publish_all(args[2], events)
  if #acks > 0 then
    redis.call('XACK', keys[1], args[3], unpack(acks))
    redis.call('HINCRBY', keys[2], 'failed', #acks)
    redis.call('HINCRBY', keys[2], 'gate_refused', #acks)
  end
  return out
end

-- Offer pid's free units to its waitlist, oldest first, at now (ms): a
-- checkout whose lines all fit is reserved as gate_reserve would and its
-- job queued again; one that does not fit keeps its place.  Ids no
-- longer waitlisted (withdrawn, failed) are dropped.  How many went.
local function serve(pid, now)
  local key, n, g = RK.WAITLIST .. pid, 0, gate_view()
  for _, id in ipairs(redis.call('ZRANGE', key, 0, 199)) do
    local v = view_stock(g, pid)
    if not v or v == 'gone' or tonumber(v) <= 0 then break end
    local h = redis.call('HMGET', RK.CHECKOUT .. id, 'status', 'userId',
      'lines', 'rid', 'createdAt')
    if h[1] ~= 'waitlisted' then
      redis.call('ZREM', key, id)
    else
      local lines, fits = split_lines(h[3]), true
      for _, l in ipairs(lines) do
        local c = view_stock(g, l[1])
        if not c or refusal(g, l, c, h[2], now) then fits = false end
      end
      if fits and redis.call('EXISTS', RK.GATE_RESV .. id) == 0 then
        reserve(g, id, h[2], lines)
        redis.call('ZREM', key, id)
        redis.call('HSET', RK.CHECKOUT .. id, 'seq', redis.call('INCR', RK.SEQ))
        redis.call('XADD', RK.STREAM, '*', unpack(job_fields(id, h[2],
          h[4], h[5], h[3], true)))
        n = n + 1
      end
    end
  end
  gate_write(g)
  return n
end

--[[
gate_user_set: MongoDB found user holding units of a limited product
the gate did not count (counts start when a reservation makes them):
remember them, so that the next refusal costs no MongoDB operation.
The refused checkout's own reservation is still counted (its settling
takes it off).
KEYS: none.  ARGV: [1] productId, [2] userId, [3] units held in live
      orders, [4] the refused checkout's id.
Reply: 1.
]]
local function gate_user_set(keys, args)
  local key = RK.GATE_USER .. args[1]
  local cur = tonumber(redis.call('HGET', key, args[2]) or '0')
  local want = tonumber(args[3]) + tonumber(redis.call('HGET',
    RK.GATE_RESV .. args[4], args[1]) or '0')
  if want > cur then redis.call('HSET', key, args[2], want) end
  return 1
end

--[[
gate_return: units of cancelled or expired orders go back to the gate,
once per order: a marker (gate:back:<orderId>, kept two days) makes a
repeat (the sweeper's repair, a retried request) a no-op.  A counter
that exists takes the units; a missing one will be seeded from MongoDB,
which has them already, so a seed under way is made to start again
(catalog:version).  The customer counts of limited products go down;
each product's waitlist is served at once, before any new buyer.
KEYS: [1] catalog:stock, [2] catalog:version.
ARGV: [1] n, then per order: orderId, userId, lines
      "<productId>:<qty>,...".
Reply: how many orders' units went back now.
]]
local function gate_return(keys, args)
  local n, bump, pids = 0, false, {}
  for i = 2, 1 + 3 * tonumber(args[1]), 3 do
    if redis.call('SET', RK.GATE_BACK .. args[i], 1, 'NX', 'EX',
        172800) then
      n = n + 1
      for _, l in ipairs(split_lines(args[i + 2])) do
        local key = RK.GATE_STOCK .. l[1]
        local cur = redis.call('GET', key)
        if not cur then
          bump = true
        elseif cur ~= 'gone' then
          redis.call('INCRBY', key, l[2])
        end
        user_less(l[1], args[i + 1], l[2])
        pids[l[1]] = true
      end
    end
  end
  if n > 0 then redis.call('INCR', keys[1]) end
  if bump then redis.call('INCR', keys[2]) end
  local t = redis.call('TIME')
  for pid in pairs(pids) do
    serve(pid, t[1] * 1000 + math.floor(t[2] / 1000))
  end
  return n
end

--[[
gate_seed_begin: first half of seeding a product's counter.
KEYS: none.  ARGV: [1] productId.
Reply: {"set"} if the counter exists; else {"missing", catalog version,
      then the checkout ids holding reservations of it}.  The caller
      reads, in one database snapshot, the product's stock and which of
      those checkouts have an order, then calls gate_seed_set.
]]
local function gate_seed_begin(keys, args)
  if redis.call('EXISTS', RK.GATE_STOCK .. args[1]) == 1 then
    return {'set'}
  end
  local out = {'missing', redis.call('GET', RK.CATALOG) or '0'}
  for _, id in ipairs(redis.call('HKEYS', RK.GATE_HELD .. args[1])) do
    out[#out + 1] = id
  end
  return out
end

--[[
gate_seed_set: second half: counter = stock in the snapshot, minus the
units still held by checkouts that had no order in the snapshot.
A reservation whose order committed before the snapshot is already in
the stock and is not subtracted; one settled since gate_seed_begin is
no longer held and is not subtracted (if its order committed after the
snapshot, the counter is that much too high: the gate admits more and
MongoDB refuses them).  No reservation can be made while the counter
is missing.  A product write since gate_seed_begin (the catalogue
version moved) makes the snapshot stale: nothing is set.
The product's sale rules from the same snapshot are stored beside the
counter (gate:rule:<pid>) and go with it.
KEYS: none.  ARGV: [1] productId, [2] the version gate_seed_begin gave,
      [3] the stock in the snapshot, or "gone", [4] the sale rules
      "<startsMs>|<endsMs>|<limit>" (parts empty when unset), [5...]
      the held checkout ids that had no order in the snapshot.
Reply: {"set", value}, or {"retry"} (seed again).
]]
local function gate_seed_set(keys, args)
  local key = RK.GATE_STOCK .. args[1]
  local cur = redis.call('GET', key)
  if cur then return {'set', cur} end
  if (redis.call('GET', RK.CATALOG) or '0') ~= args[2] then
    return {'retry'}
  end
  redis.call('SET', RK.GATE_RULE .. args[1], args[4])
  if args[3] == 'gone' then
    redis.call('SET', key, 'gone')
    return {'set', 'gone'}
  end
  local value = tonumber(args[3])
  for i = 5, #args do
    value = value - (tonumber(redis.call('HGET', RK.GATE_HELD .. args[1],
      args[i])) or 0)
  end
  redis.call('SET', key, value)
  return {'set', tostring(value)}
end

--[[
gate_forget: drop a product's counter so that the next reservation
seeds it from MongoDB again (MongoDB refused what the gate admitted).
KEYS: none.  ARGV: [1] productId.  Reply: 1 if there was one.
]]
local function gate_forget(keys, args)
  local key = RK.GATE_STOCK .. args[1]
  if redis.call('GET', key) == 'gone' then return 0 end
  redis.call('DEL', RK.GATE_RULE .. args[1])
  return redis.call('DEL', key)
end

--[[
locks_take: take several locks at once, or none: a transaction's
product locks, all or nothing, so that two holders never wait for each
other in a circle.
KEYS: none.  ARGV: [1] token, [2] TTL in ms, [3...] the lock keys.
Reply: 1 taken, 0 one is held (nothing taken: try again).
]]
local function locks_take(keys, args)
  for i = 3, #args do
    if redis.call('EXISTS', args[i]) == 1 then return 0 end
  end
  for i = 3, #args do
    redis.call('SET', args[i], args[1], 'PX', args[2])
  end
  return 1
end

--[[
locks_renew: extend the locks still held, while their holder works on.
KEYS: none.  ARGV: [1] ttl ms, then pairs: [2k] a lock key, [2k+1] the
token its holder took it with.
Reply: how many were still held (and so extended).
]]
local function locks_renew(keys, args)
  local n = 0
  for i = 2, #args - 1, 2 do
    if redis.call('GET', args[i]) == args[i + 1] then
      redis.call('PEXPIRE', args[i], args[1])
      n = n + 1
    end
  end
  return n
end

--[[
locks_release: release the locks still holding token.
KEYS: none.  ARGV: [1] token, [2...] the lock keys.
Reply: how many were released.
]]
local function locks_release(keys, args)
  local n = 0
  for i = 2, #args do
    if redis.call('GET', args[i]) == args[1] then
      n = n + redis.call('DEL', args[i])
    end
  end
  return n
end

--[[
lock_release: compare-and-delete of a lock.
KEYS: [1] the lock.  ARGV: [1] the holder's token.
Reply: 1 if released, 0 if it was not ours (expired, taken since).
]]
local function lock_release(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    return redis.call('DEL', keys[1])
  end
  return 0
end

-- Is checkout key's status still the failure that dead-lettering the
-- stream entry msgid wrote?  (Statuses written before the 'dead' mark
-- existed: a failure with code internal.)
local function dead_failure(key, msgid)
  local cur = redis.call('HMGET', key, 'status', 'dead', 'body')
  if cur[1] ~= 'failed' then return false end
  if cur[2] then return cur[2] == msgid end
  return string.find(cur[3] or '', '"code":"internal"', 1, true) ~= nil
end

--[[
dlq_replay: put a dead-lettered job back on the checkout stream as it was
submitted, and its checkout back to queued.  An operator's decision
(shopctl dlq replay), taken after checking that no order exists for it.
The one final status ever taken back is the failure the dead-lettering
itself wrote: a checkout whose status is anything else (or has expired)
is refused, so a buyer is never re-queued behind their back.  The worker
then orders only the lines submitted (cart_changed if the cart differs).
KEYS: [1] checkout:dead, [2] checkout:jobs.  ARGV: [1] the dead-letter
entry's id, [2] status TTL, [3] events channel, [4] the queued status
body.
Reply: {checkoutId, the new stream entry's id}; {checkoutId, '', the
status now or 'expired'} when refused; an error NOENTRY if the entry is
gone, NOJOB if it lacks the job (dead-lettered by an older version).
]]
local function dlq_replay(keys, args)
  local e = redis.call('XRANGE', keys[1], args[1], args[1])[1]
  if not e then return redis.error_reply('NOENTRY no such dead letter') end
  local f = {}
  for k = 1, #e[2], 2 do f[e[2][k]] = e[2][k + 1] end
  if not f.lines or not f.checkoutId or not f.userId then
    return redis.error_reply('NOJOB the dead letter does not hold its job')
  end
  local key = RK.CHECKOUT .. f.checkoutId
  if not dead_failure(key, f.msgid) then
    return {f.checkoutId, '', redis.call('HGET', key, 'status') or 'expired'}
  end
  redis.call('HDEL', key, 'dead')
  redis.call('HSET', key, 'userId', f.userId, 'status', 'queued',
    'body', args[4], 'seq', redis.call('INCR', RK.SEQ))
  redis.call('EXPIRE', key, args[2])
  -- Marked a replay: the worker orders only these lines, not whatever
  -- the cart holds today (cart_changed if it differs).
  local job = job_fields(f.checkoutId, f.userId, f.rid, f.createdAt,
    f.lines, f.waitlist == '1')
  job[#job + 1] = 'replay'
  job[#job + 1] = '1'
  local msgid = redis.call('XADD', keys[2], '*', unpack(job))
  redis.call('XDEL', keys[1], args[1])
  redis.call('PUBLISH', args[3], args[4])
  return {f.checkoutId, msgid}
end

--[[
waitlist_tick: the sweeper's visit to one product's waitlist: serve it
(units may have come back by a restock), then name the checkouts whose
wait is over (waitlisted WAITLIST_TTL_S ago, or the sale has ended or
the product is gone) for waitlist_fail.
KEYS: none.  ARGV: [1] productId, [2] now in ms, [3] WAITLIST_TTL_S in ms.
Reply: {"empty"} (forgotten); {"seed"} (no counter: seed it, come back);
      {"ok", served, then per checkout to fail: id, createdAt}.
]]
local function waitlist_tick(keys, args)
  local pid, now = args[1], tonumber(args[2])
  local key = RK.WAITLIST .. pid
  if redis.call('ZCARD', key) == 0 then
    redis.call('SREM', RK.WAITLISTS, pid)
    return {'empty'}
  end
  local v = redis.call('GET', RK.GATE_STOCK .. pid)
  if not v then return {'seed'} end
  local out = {'ok', serve(pid, now)}
  local r = rules_of(pid)
  local due
  if v == 'gone' or (r and r.ends and now >= r.ends) then
    due = redis.call('ZRANGE', key, 0, 99)
  else
    due = redis.call('ZRANGEBYSCORE', key, '-inf',
      '(' .. (now - tonumber(args[3])), 'LIMIT', 0, 100)
  end
  for _, id in ipairs(due) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', RK.CHECKOUT .. id, 'createdAt') or ''
  end
  return out
end

--[[
waitlist_fail: end waitlisted checkouts, each only if it is still on its
product's waitlist (not served, not withdrawn since): status failed with
the body given, published.  Withdrawal (DELETE /api/checkout/:id) is
the same for one checkout of its owner.
KEYS: none.  ARGV: [1] the TTL of a final status, [2] the events
      channel, then per checkout: id, userId ("" for any), the failed
      body.
Reply: per checkout: "done" (it failed now), "notyours", or the status
      it has ("" if none): nothing was changed.
]]
local function waitlist_fail(keys, args)
  local out = {}
  for i = 3, #args, 3 do
    local id, user, body = args[i], args[i + 1], args[i + 2]
    local key = RK.CHECKOUT .. id
    local h = redis.call('HMGET', key, 'status', 'userId', 'wlpid')
    if user ~= '' and h[2] ~= user then
      out[#out + 1] = 'notyours'
    elseif h[1] ~= 'waitlisted' or not h[3] or
        redis.call('ZREM', RK.WAITLIST .. h[3], id) == 0 then
      out[#out + 1] = h[1] or ''
    else
      redis.call('HSET', key, 'status', 'failed', 'body', body)
      redis.call('EXPIRE', key, args[1])
      redis.call('PUBLISH', args[2], body)
      redis.call('HINCRBY', RK.STATS, 'failed', 1)
      out[#out + 1] = 'done'
    end
  end
  return out
end

--[[
waitlist_position: a waitlisted checkout's place on its product's list.
KEYS: none.  ARGV: [1] checkoutId.  Reply: its rank from 0, or -1.
]]
local function waitlist_position(keys, args)
  local pid = redis.call('HGET', RK.CHECKOUT .. args[1], 'wlpid')
  if not pid then return -1 end
  return redis.call('ZRANK', RK.WAITLIST .. pid, args[1]) or -1
end

redis.register_function('checkout_submit', checkout_submit)
redis.register_function('checkout_unidem', checkout_unidem)
redis.register_function('batch_begin', batch_begin)
redis.register_function('batch_finish', batch_finish)
redis.register_function('checkout_requeue', checkout_requeue)
redis.register_function('gate_reserve', gate_reserve)
redis.register_function('gate_user_set', gate_user_set)
redis.register_function('gate_return', gate_return)
redis.register_function('gate_seed_begin', gate_seed_begin)
redis.register_function('gate_seed_set', gate_seed_set)
redis.register_function('gate_forget', gate_forget)
redis.register_function('locks_take', locks_take)
redis.register_function('locks_renew', locks_renew)
redis.register_function('locks_release', locks_release)
redis.register_function('lock_release', lock_release)
redis.register_function('dlq_replay', dlq_replay)
redis.register_function('waitlist_tick', waitlist_tick)
redis.register_function('waitlist_fail', waitlist_fail)
redis.register_function{function_name = 'waitlist_position',
  callback = waitlist_position, flags = {'no-writes'}}
