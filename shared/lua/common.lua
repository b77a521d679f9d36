-- common.lua -- helpers every part of the checkout library uses (the
-- library is shared/lua/*.lua in one Redis function library: see
-- protocol.lua).

local function split_lines(s)
  local out = {}
  for pid, qty in string.gmatch(s or '', '([%x]+):(%d+)') do
    out[#out + 1] = {pid, tonumber(qty)}
  end
  return out
end

-- The job fields of a queued checkout (XADD, after the '*').
local function job_fields(id, user, rid, created, lines, waitlist)
  local f = {'checkoutId', id, 'userId', user, 'rid', rid or '',
    'createdAt', created or '', 'lines', lines}
  if waitlist then
    f[#f + 1] = 'waitlist'
    f[#f + 1] = '1'
  end
  return f
end

local function is_final(status)
  return status == 'completed' or status == 'failed'
end

-- The value of field name in a flat RESP2 map (XINFO's), or nil.
local function field_of(flat, name)
  for i = 1, #flat - 1, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
