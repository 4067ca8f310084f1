-- policyengine rate limits: every limit of one request, checked and taken atomically,
-- for each of several requests in turn (one call for the checks a server has pending).
-- The algorithms of policyengine/ratelimit/algorithm.py, step for step; times are whole
-- microseconds (exact in Lua's doubles until the year 2255).
--
-- KEYS      the states of the limits of every check, check after check
-- ARGV[i]   check i: `?` for a peek (answers as a check would, writes nothing), then
--           its time, or nothing to use this server's clock (one clock for
--           every replica), then for each of its limits `|kind,capacity,unit`: kind "w"
--           (window) or "b" (bucket), unit the window's period or the bucket's emission
--           interval. One argument per check: redis-py encodes each argument in Python.
-- Returns, for each check: admitted (1 or 0), then available and wait for each of its
-- limits: each limit's quota after the request when it was admitted; before it when it
-- was refused, in which case nothing was written for that check.
--
-- A window is a string: an 8-byte head index, then one 8-byte time per admitted request
-- (the newest `capacity` of them: in order while filling, then a ring). A bucket is its
-- theoretical arrival time as a decimal string. Every write renews the key's TTL to the
-- moment its state runs out, so idle keys leave Redis by themselves.

local HEADER = 8

local server_now = nil

local function now_us(given)
  if given ~= '' then return tonumber(given) end
  if not server_now then
    local time = redis.call('TIME')
    server_now = tonumber(time[1]) * 1000000 + tonumber(time[2])
  end
  return server_now
end

local function pack(number) return struct.pack('<d', number) end

-- the index-th oldest time of a log (0 is the oldest)
local function stamp(limit, index)
  local offset = HEADER + 8 * ((limit.head + index) % limit.n)
  return (struct.unpack('<d', redis.call('GETRANGE', limit.key, offset, offset + 7)))
end

local function load_window(limit)
  local size = redis.call('STRLEN', limit.key)
  limit.n, limit.head = 0, 0
  if size == 0 then return end
  if size < HEADER or (size - HEADER) % 8 ~= 0 then
    error('policyengine: unexpected value at ' .. limit.key)
  end
  limit.n = (size - HEADER) / 8
  limit.head = (struct.unpack('<d', redis.call('GETRANGE', limit.key, 0, HEADER - 1)))
  if limit.n == limit.capacity or (limit.n < limit.capacity and limit.head == 0) then return end
  -- the limit's count changed (a policy reload): keep the newest times, in order
  local kept = {}
  for index = math.max(0, limit.n - limit.capacity), limit.n - 1 do
    kept[#kept + 1] = pack(stamp(limit, index))
  end
  redis.call('SET', limit.key, pack(0) .. table.concat(kept), 'KEEPTTL')
  limit.n, limit.head = #kept, 0
end

local function window_quota(limit, now)
  load_window(limit)
  if limit.n > 0 then now = math.max(now, stamp(limit, limit.n - 1)) end
  limit.now = now
  local horizon = now - limit.unit
  local low, high = 0, limit.n
  while low < high do
    local middle = math.floor((low + high) / 2)
    if stamp(limit, middle) > horizon then high = middle else low = middle + 1 end
  end
  local inside = limit.n - low
  local wait = 0
  if inside > 0 then wait = stamp(limit, low) + limit.unit - now end
  return limit.capacity - inside, wait
end

local function window_admit(limit, clock)
  local time = pack(limit.now)
  if limit.n == 0 then
    redis.call('SET', limit.key, pack(0) .. time)
  elseif limit.n + 1 < limit.capacity then
    redis.call('APPEND', limit.key, time)
  elseif limit.n < limit.capacity then
    -- the log is full from now on: write it anew, as APPEND leaves up to 2x room behind
    redis.call('SET', limit.key, redis.call('GET', limit.key) .. time)
  else
    redis.call('SETRANGE', limit.key, HEADER + 8 * limit.head, time)
    redis.call('SETRANGE', limit.key, 0, pack((limit.head + 1) % limit.capacity))
  end
  redis.call('PEXPIRE', limit.key, math.ceil((limit.now + limit.unit - clock) / 1000))
end

local function bucket_quota(limit, now)
  local stored = redis.call('GET', limit.key)
  local tat = 0
  if stored then
    tat = tonumber(stored)
    if not tat then error('policyengine: unexpected value at ' .. limit.key) end
  end
  limit.tat = math.max(tat, now)
  local room = now + limit.capacity * limit.unit - limit.tat
  local available = math.floor(room / limit.unit)
  local wait = 0
  if available < limit.capacity then wait = (available + 1) * limit.unit - room end
  return available, wait
end

local function bucket_admit(limit, clock)
  local tat = limit.tat + limit.unit
  redis.call('SET', limit.key, string.format('%.0f', tat),
             'PX', math.max(1, math.ceil((tat - clock) / 1000)))
end

-- a check's argument, parsed once per call: the checks of one call mostly share theirs
local parsed_specs = {}

local function parse_spec(spec)
  local parsed = parsed_specs[spec]
  if parsed then return parsed end
  local peek, given, rest = string.match(spec, '^(%??)([^|]*)(.*)$')
  local rules = {}
  for kind, capacity, unit in string.gmatch(rest, '|(%a),(%d+),(%d+)') do
    rules[#rules + 1] = {kind = kind, capacity = tonumber(capacity), unit = tonumber(unit)}
  end
  if #rules == 0 then error('policyengine: a check without limits') end
  parsed = {peek = peek == '?', given = given, rules = rules}
  parsed_specs[spec] = parsed
  return parsed
end

-- one check: its limits are KEYS[first + 1 ...]; appends its reply, returns their count
local function check(first, spec, reply)
  local parsed = parse_spec(spec)
  local clock = now_us(parsed.given)
  local limits, admitted = {}, 1
  for i, rule in ipairs(parsed.rules) do
    local limit = {key = KEYS[first + i], kind = rule.kind, capacity = rule.capacity,
                   unit = rule.unit}
    if limit.kind == 'w' then
      limit.available, limit.wait = window_quota(limit, clock)
    else
      limit.available, limit.wait = bucket_quota(limit, clock)
    end
    if limit.available < 1 then admitted = 0 end
    limits[i] = limit
  end
  reply[#reply + 1] = admitted
  for _, limit in ipairs(limits) do
    if admitted == 1 and not parsed.peek then
      if limit.kind == 'w' then window_admit(limit, clock) else bucket_admit(limit, clock) end
      limit.available = limit.available - 1
      if limit.wait == 0 then limit.wait = limit.unit end
    end
    reply[#reply + 1] = limit.available
    reply[#reply + 1] = limit.wait
  end
  return #limits
end

local reply, first = {}, 0
for _, spec in ipairs(ARGV) do
  first = first + check(first, spec, reply)
end
if first ~= #KEYS then error('policyengine: keys and arguments disagree') end
return reply
