-- auth.lua -- the Redis side of accounts: rate limits (login,
-- registration, password changes, the submit bucket), token revocation
-- and token epochs.

-- A token bucket of `limit` tokens refilled over `window` ms, kept as
-- "<thousandths of a token>:<ms>" at key: take one.  0 if taken, else
-- the ms until one is back.  (Integers and concatenation only: this
-- runs once per submit.)
local function take_token(key, limit, window, now)
  local milli = limit * 1000
  local v = redis.call('GET', key)
  if v then
    local sep = string.find(v, ':', 1, true)
    local t, at = tonumber(string.sub(v, 1, sep - 1)),
      tonumber(string.sub(v, sep + 1))
    milli = math.min(limit * 1000,
      t + math.floor((now - at) * limit * 1000 / window))
  end
  if milli < 1000 then
    return math.ceil((1000 - milli) * window / (limit * 1000))
  end
  redis.call('SET', key, (milli - 1000) .. ':' .. now, 'PX', window)
  return 0
end

--[[
limit_attempt: count an attempt against every counter, unless one is
already at its limit: counted first, checked after, so that a burst of
concurrent attempts cannot exceed a limit (logins, registrations).
KEYS: the counters.  ARGV: [1] the window in seconds, then one limit per
      key (0: that counter has no limit).
Reply: 0 counted; else the seconds until the first full counter resets
      (nothing was counted).
]]
local function limit_attempt(keys, args)
  for i = 1, #keys do
    local limit = tonumber(args[i + 1])
    if limit > 0 and tonumber(redis.call('GET', keys[i]) or '0') >= limit then
      local ttl = redis.call('TTL', keys[i])
      if ttl < 1 then ttl = 1 end
      return ttl
    end
  end
  for i = 1, #keys do
    if redis.call('INCR', keys[i]) == 1 then
      redis.call('EXPIRE', keys[i], args[1])
    end
  end
  return 0
end

--[[
limit_forgive: take back one counted attempt (a login that succeeded).
KEYS: the counters.  ARGV: none.  Reply: 1.
]]
local function limit_forgive(keys, args)
  for i = 1, #keys do
    if tonumber(redis.call('GET', keys[i]) or '0') > 0 then
      redis.call('DECR', keys[i])
    end
  end
  return 1
end

-- A token's user's epoch (false if not known) and whether the token
-- was revoked, in one read: the keys auth:epoch:<user> and
-- auth:revoked:<signature>.
local function token_read(epoch_key, revoked_key)
  local got = redis.call('MGET', epoch_key, revoked_key)
  return got[1], got[2] ~= false
end

--[[
token_state: is a token still good?  (Every authenticated request asks,
through a per-process cache of 1 s: api/tokens.c.)
KEYS: [1] auth:epoch:<user>, [2] auth:revoked:<signature>.
ARGV: none.
Reply: {epoch or false, 1 if revoked else 0}.
]]
local function token_state(keys, args)
  local epoch, revoked = token_read(keys[1], keys[2])
  return {epoch, revoked and 1 or 0}
end

--[[
epoch_set: remember a user's token epoch, read from the database, unless
a newer one is known.
KEYS: [1] auth:epoch:<user>.  ARGV: [1] the epoch, [2] TTL in seconds.
Reply: the epoch now known.
]]
local function epoch_set(keys, args)
  local cur = tonumber(redis.call('GET', keys[1]) or '-1')
  if cur < tonumber(args[1]) then
    redis.call('SET', keys[1], args[1], 'EX', args[2])
    return tonumber(args[1])
  end
  redis.call('EXPIRE', keys[1], args[2])
  return cur
end

redis.register_function('limit_attempt', limit_attempt)
redis.register_function('limit_forgive', limit_forgive)
redis.register_function{function_name = 'token_state',
  callback = token_state, flags = {'no-writes'}}
redis.register_function('epoch_set', epoch_set)
