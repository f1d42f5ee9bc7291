/**
 * The Lua scripts of the Redis store, as named strings. Each store call for one scope is
 * one script, so it runs atomically and in one round trip; every script touches only keys
 * under the scope's hash tag, so it runs on one Redis Cluster slot.
 *
 * Shared conventions (the LIBRARY prelude reads them):
 *   KEYS[1]  `<prefix>{tag}`    the scope's hash: `seq` (reservation counter, started at
 *                               store time × 1000 so numbers are never reused), `scope`
 *                               (JSON [kind, id]), `on` (open reserved nanos), `ex` / `exn`
 *                               (expired count and nanos), `life` (set once the scope has a
 *                               lifetime budget: its keys then never expire)
 *   KEYS[2]  `<prefix>{tag}:x`  ZSET of open reservation numbers scored by expiresAt
 *   ARGV[1]  time in epoch ms from an injected test clock, or '' to use Redis `TIME`
 *   ARGV[2]  expiry policy: 'charge-reserved' or 'release'
 *   ARGV[3]  ms an ended reservation's tombstone is kept (so a late settle says how it ended)
 *   ARGV[4]  grace ms added to every time to live, so no key vanishes while it still counts
 *
 * Keys derived inside the scripts from KEYS[1] (same hash tag, so the same slot; Redis
 * Cluster allows undeclared keys of the declared slot):
 *   `<base>:r:<n>`           HASH reservation n while open; a tombstone `st` once ended
 *   `<base>:b:<periodId>:<start>`  HASH budget of one period: `s` spent, `r` reserved
 *   `<base>:q:<windowMs>`    ZSET requests log: reservation numbers scored by admission time
 *   `<base>:t:<windowMs>`    ZSET tokens log, same shape
 *   `<base>:w:<windowMs>`    HASH token weight per reservation number; field `#` is their sum
 *   `<base>:k:<sha>`         STRING the reservation number admitted for an admission key
 *                            (`sha`: SHA-256 hex of the caller's requestKey, made in JS, so
 *                            no caller text reaches a key name); lives ttl + grace + retention
 *
 * A concurrency limit (rule kind 'c') has no key of its own: the open reservations are the
 * open streams, so it counts the expiry index (KEYS[2]) after the sweep, and a slot is
 * given back by whatever ends the reservation (settle, release, expiry).
 *
 * Time to live is only garbage collection, always relative (`PEXPIRE`), never a rule: every
 * decision is made from the scores and counters, so an injected test clock far from Redis's
 * own time cannot make a key vanish early. Expiry of reservations is lazy: every script first
 * sweeps the scope's reservations whose expiresAt has passed, so each is ended exactly once.
 *
 * Replies are flat arrays of integers and strings; -1 stands for null (every real value is
 * non-negative). Lua numbers are doubles, exact for the safe-integer nano-dollar amounts the
 * store accepts.
 */

/** A script and its name, for error messages. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
}

// Calendar maths for 'month' periods (Howard Hinnant's days/civil algorithms), so a script
// picks the period from its own time. Mirrors core's periodBounds(); a test compares them.
const CALENDAR = `
local DAY = 86400000

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m + 9
  if m > 2 then mp = m - 3 end
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_year_month(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp - 9
  if mp < 10 then m = mp + 3 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end

-- Start (inclusive) and end (exclusive; -1 = never) of the period that holds now.
local function period_bounds(kind, window, offset, now)
  if kind == 'lifetime' then return 0, -1 end
  if kind == 'month' then
    local y, m = civil_year_month(math.floor(now / DAY))
    local ny, nm = y, m + 1
    if nm > 12 then ny, nm = y + 1, 1 end
    return days_from_civil(y, m, 1) * DAY, days_from_civil(ny, nm, 1) * DAY
  end
  local start = math.floor((now - offset) / window) * window + offset
  return start, start + window
end
`;

const LIBRARY = `${CALENDAR}
local base, index = KEYS[1], KEYS[2]
local RETENTION = tonumber(ARGV[3])
local GRACE = tonumber(ARGV[4])

-- Store time: the injected clock when given (tests), else this Redis server's clock, so
-- every instance of the app agrees whatever its own clock says.
local function clock_now()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers as Redis arguments, never in exponent notation (Lua numbers are doubles).
local function int(x) return string.format('%d', x) end

-- The largest amount tokenmeter keeps (2^53 - 1 nanos): running totals stay exact up to it
-- (HINCRBY is 64-bit; a double holds every integer up to it) and are held at it.
local MAX_NANOS = 9007199254740991
local function add_capped(key, field, amount)
  local total = redis.call('HINCRBY', key, field, int(amount))
  if total > MAX_NANOS then
    redis.call('HSET', key, field, int(MAX_NANOS))
    return MAX_NANOS
  end
  return total
end

-- The scope hash's 'life' flag and 'h': the store time its hash and index are kept until.
-- Keeping that time beside the data saves asking Redis for TTLs on every call.
local scope_life, scope_until = false, 0
local function load_scope(...)
  local f = redis.call('HMGET', base, 'life', 'h', ...)
  scope_life = f[1] ~= false
  scope_until = tonumber(f[2]) or 0
  return f
end

-- The scope's hash and index outlive everything that refers to them: keeps them until at
-- least until_ms (store time), never shorter. A scope that ever held a lifetime budget
-- keeps them for good: its lifetime spend never expires either.
local function keep_scope(until_ms, now)
  if scope_life or until_ms <= scope_until then return end
  redis.call('PEXPIRE', base, int(until_ms - now))
  redis.call('PEXPIRE', index, int(until_ms - now))
  redis.call('HSET', base, 'h', int(until_ms))
  scope_until = until_ms
end

-- A period's budget hash lives until its period and its reservations are over, plus grace,
-- so a late settle still finds it; its 'h' field says until when (store time). Lifetime
-- budgets (finish -1) never expire.
local function keep_budget(b, until_ms, now)
  if b.finish < 0 or until_ms <= b.h then return end
  redis.call('PEXPIRE', b.key, int(until_ms - now))
  redis.call('HSET', b.key, 'h', int(until_ms))
  b.h = until_ms
end

-- Moves reserved nanos; never below zero, even if a key was evicted under it.
local function add_reserved(bkey, delta)
  local reserved = redis.call('HINCRBY', bkey, 'r', int(delta))
  if reserved < 0 then
    redis.call('HSET', bkey, 'r', 0)
    return 0
  end
  return reserved
end

-- An ended reservation shrinks to its outcome for RETENTION ms, then is forgotten.
local function tombstone(rkey, outcome)
  redis.call('DEL', rkey)
  redis.call('HSET', rkey, 'st', outcome)
  redis.call('PEXPIRE', rkey, int(RETENTION))
end

-- Ends every reservation whose expiresAt <= now (expiresAt is exclusive), exactly once:
-- it leaves the index in the same step. Under 'charge-reserved' its full reserved amount
-- is charged to the period it was made in. Its requests stay in their windows: it ran.
-- Returns how many it ended and their reserved nanos.
local function sweep(now)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', int(now))
  if #due == 0 then return 0, 0 end
  local charge = ARGV[2] == 'charge-reserved'
  local count, nanos = 0, 0
  for _, n in ipairs(due) do
    local rkey = base .. ':r:' .. n
    local f = redis.call('HMGET', rkey, 'st', 'a', 'b', 'pe')
    if f[1] == 'open' then
      local amount = tonumber(f[2])
      if f[3] then
        local b = { key = base .. ':b:' .. f[3], finish = tonumber(f[4]) }
        add_reserved(b.key, -amount)
        if charge then add_capped(b.key, 's', amount) end
        b.h = tonumber(redis.call('HGET', b.key, 'h')) or 0
        keep_budget(b, math.max(b.finish, now) + GRACE, now)
      end
      count = count + 1
      nanos = nanos + amount
      tombstone(rkey, 'expired')
    end
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', int(now))
  if count > 0 then
    redis.call('HINCRBY', base, 'ex', int(count))
    add_capped(base, 'exn', nanos)
    redis.call('HINCRBY', base, 'on', int(-nanos))
    keep_scope(now + RETENTION, now)
  end
  return count, nanos
end

-- The budget named by ARGV[i .. i+4]: limit ('' = none), period kind ('lifetime',
-- 'month' or 'window'), window ms, offset ms (0 <= offset < window), period id (key part).
local function read_budget(i, now)
  if ARGV[i] == '' then return nil end
  local b = { limit = tonumber(ARGV[i]) }
  b.start, b.finish = period_bounds(ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), now)
  b.suffix = ARGV[i + 4] .. ':' .. int(b.start)
  b.key = base .. ':b:' .. b.suffix
  local f = redis.call('HMGET', b.key, 's', 'r', 'h')
  b.spent, b.reserved, b.h = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0
  return b
end

-- The rules named by ARGV[i] (count) and then (kind 'q', 't' or 'c', window ms (0 for
-- 'c'), limit) per rule; their keys are KEYS[k..]: one ZSET per requests rule, ZSET +
-- weights HASH per tokens rule, none for a concurrency rule, in rule order.
local function read_rules(i, k)
  local rules = {}
  for r = 1, tonumber(ARGV[i]) do
    local a = i + 1 + (r - 1) * 3
    local rule = { kind = ARGV[a], window = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]) }
    if rule.kind == 't' then
      rule.zkey, rule.wkey = KEYS[k], KEYS[k + 1]
      k = k + 2
    elseif rule.kind == 'q' then
      rule.zkey = KEYS[k]
      k = k + 1
    end
    rules[r] = rule
  end
  return rules
end

-- Drops entries that left the window (one made at t counts while now - t < window), then
-- fills rule.used: requests, or tokens, counted now; for a concurrency rule, the open
-- reservations (call after sweep, so none past its expiry is counted).
local function measure(rule, now)
  if rule.kind == 'c' then
    rule.used = redis.call('ZCARD', index)
    return
  end
  local cutoff = now - rule.window
  if rule.kind == 'q' then
    redis.call('ZREMRANGEBYSCORE', rule.zkey, '-inf', int(cutoff))
    rule.used = redis.call('ZCARD', rule.zkey)
    return
  end
  local old = redis.call('ZRANGEBYSCORE', rule.zkey, '-inf', int(cutoff))
  if #old > 0 then
    local gone = 0
    for i = 1, #old, 1000 do
      local chunk = { unpack(old, i, math.min(i + 999, #old)) }
      local weights = redis.call('HMGET', rule.wkey, unpack(chunk))
      for j = 1, #weights do gone = gone + (tonumber(weights[j]) or 0) end
      redis.call('HDEL', rule.wkey, unpack(chunk))
    end
    redis.call('HINCRBY', rule.wkey, '#', int(-gone))
    redis.call('ZREMRANGEBYSCORE', rule.zkey, '-inf', int(cutoff))
  end
  rule.used = tonumber(redis.call('HGET', rule.wkey, '#')) or 0
end

local function weights_of(rule, entries)
  local members = {}
  for i = 1, #entries, 2 do members[#members + 1] = entries[i] end
  return redis.call('HMGET', rule.wkey, unpack(members))
end

-- Ms until the newest entry that counts leaves the window; 0 when nothing counts. For a
-- concurrency rule: until the last open lease expires.
local function reset_of(rule, now)
  if rule.used <= 0 then return 0 end
  if rule.kind == 'c' then
    local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if #last == 0 then return 0 end
    return math.max(0, tonumber(last[2]) - now)
  end
  if rule.kind == 'q' then
    local newest = redis.call('ZRANGE', rule.zkey, -1, -1, 'WITHSCORES')
    return tonumber(newest[2]) + rule.window - now
  end
  local stop = -1
  while true do
    local entries = redis.call('ZRANGE', rule.zkey, int(stop - 99), int(stop), 'WITHSCORES')
    if #entries == 0 then return 0 end
    local weights = weights_of(rule, entries)
    for i = #weights, 1, -1 do
      if (tonumber(weights[i]) or 0) > 0 then return tonumber(entries[2 * i]) + rule.window - now end
    end
    stop = stop - 100
  end
end

-- Ms until a rule that refuses need would admit it, if nothing else is admitted
-- meanwhile: until enough of the oldest entries have left (for a concurrency rule: enough
-- of the soonest leases have expired). -1 when waiting cannot help.
local function retry_after(rule, need, now)
  local target = rule.limit - math.max(need, 1)
  if target < 0 then return -1 end
  if rule.used <= target then return 0 end
  if rule.kind == 'c' then
    local gone = rule.used - target
    local entry = redis.call('ZRANGE', index, int(gone - 1), int(gone - 1), 'WITHSCORES')
    return tonumber(entry[2]) - now
  end
  if rule.kind == 'q' then
    local gone = rule.used - target
    local entry = redis.call('ZRANGE', rule.zkey, int(gone - 1), int(gone - 1), 'WITHSCORES')
    return tonumber(entry[2]) + rule.window - now
  end
  local remaining, start = rule.used, 0
  while true do
    local entries = redis.call('ZRANGE', rule.zkey, int(start), int(start + 99), 'WITHSCORES')
    if #entries == 0 then return -1 end
    local weights = weights_of(rule, entries)
    for i = 1, #weights do
      remaining = remaining - (tonumber(weights[i]) or 0)
      if remaining <= target then return tonumber(entries[2 * i]) + rule.window - now end
    end
    start = start + 100
  end
end

-- Replaces (or, with relative = true, adds to) one reservation's token weight in a tokens
-- window, keeping the sum; nothing when the entry has already left the window.
local function set_weight(window, n, tokens, relative)
  local wkey = base .. ':w:' .. window
  local old = redis.call('HGET', wkey, n)
  if not old then return end
  old = tonumber(old)
  local new = tokens
  if relative then new = math.max(0, old + tokens) end
  redis.call('HSET', wkey, n, int(new))
  redis.call('HINCRBY', wkey, '#', int(new - old))
end

local PREVIOUSLY = { settled = 2, released = 3, expired = 4 }

-- An existing reservation (its hash rkey) as a table, or nil with the reply for an ended
-- or unknown one.
local function open_reservation(now, rkey)
  local f = redis.call('HMGET', rkey, 'st', 'a', 'n', 'c', 'x', 'b', 'ps', 'pe', 'l', 'p', 'q', 't')
  if f[1] ~= 'open' then return nil, { PREVIOUSLY[f[1]] or 0, now } end
  return {
    a = tonumber(f[2]), n = tonumber(f[3]), c = tonumber(f[4]), x = tonumber(f[5]),
    b = f[6], ps = tonumber(f[7]) or -1, pe = tonumber(f[8]) or -1, l = tonumber(f[9]) or -1,
    p = f[10] or '', q = f[11] or '', t = f[12] or ''
  }
end

-- The budget hash of a reservation's own period (nil without a budget).
local function budget_of(r)
  if not r.b then return nil end
  local b = { key = base .. ':b:' .. r.b, finish = r.pe }
  local f = redis.call('HMGET', b.key, 's', 'r', 'h')
  b.spent, b.reserved, b.h = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0
  return b
end

-- Reply shared by settle, release and extend:
-- { code, now, scope JSON, reservedNanos, estimatedTokens, createdAt, expiresAt,
--   periodStart, periodEnd, limitNanos, period JSON, spent, reserved }
local function reservation_reply(code, now, scope, r, b)
  local spent, reserved = -1, -1
  if b then spent, reserved = b.spent, b.reserved end
  return { code, now, scope or '', r.a, r.n, r.c, r.x, r.ps, r.pe, r.l, r.p, spent, reserved }
end

-- Undoes admission n (its hash rkey), shared by release and releaseByKey: frees the
-- reservation and takes its request and tokens out of every window it was counted in, as
-- if it had never been admitted. Returns the reply (see reservation_reply), or the
-- { code, now } of an ended or unknown reservation.
local function release_reservation(now, scope, rkey, n)
  local r, ended = open_reservation(now, rkey)
  if not r then return ended end
  for window in string.gmatch(r.q, '%d+') do
    redis.call('ZREM', base .. ':q:' .. window, n)
  end
  for window in string.gmatch(r.t, '%d+') do
    local wkey = base .. ':w:' .. window
    local old = redis.call('HGET', wkey, n)
    if old then
      redis.call('HDEL', wkey, n)
      redis.call('HINCRBY', wkey, '#', int(-tonumber(old)))
      redis.call('ZREM', base .. ':t:' .. window, n)
    end
  end
  local b = budget_of(r)
  if b then b.reserved = add_reserved(b.key, -r.a) end
  redis.call('ZREM', index, n)
  redis.call('HINCRBY', base, 'on', int(-r.a))
  tombstone(rkey, 'released')
  keep_scope(now + RETENTION, now)
  return reservation_reply(1, now, scope, r, b)
end
`;

/**
 * admit: rate limits, then budget, for one scope; records everything or nothing.
 *
 * KEYS[1] scope hash, KEYS[2] expiry index (see above)
 * KEYS[3..] per rule, in rule order: requests → its ZSET; tokens → its ZSET, its weights
 *   HASH; concurrency → none (it counts KEYS[2])
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace (see above)
 * ARGV[5]  scope as JSON [kind, id], kept in the scope hash for results
 * ARGV[6]  reserveNanos
 * ARGV[7]  estimatedTokens
 * ARGV[8]  ttlMs
 * ARGV[9..13] budget: limitNanos ('' = no budget), period kind, window ms, offset ms, period id
 * ARGV[14] the budget's period as JSON, kept in the reservation for results
 * ARGV[15] the admission key: SHA-256 hex of the caller's requestKey ('' = none); when
 *          admitted, `<base>:k:<it>` records the reservation number for releaseByKey
 * ARGV[16] number of rate-limit rules; then (kind 'q'|'t'|'c', windowMs (0 for 'c'), limit)
 *          per rule
 *
 * Reply: { status (1 admitted, 2 rate limit, 3 budget), now, reservation number (0 if
 *   rejected), expiresAt, spent, reserved, periodStart, periodEnd, retryAfterMs,
 *   index of the rule that rejected (1-based; 0 = none), then used, resetMs per rule }
 *   — budget figures are after the admission, -1 without a budget.
 */
export const ADMIT: LuaScript = {
  name: 'admit',
  source: `${LIBRARY}
local now = clock_now()
load_scope()
sweep(now)
local reserve, tokens, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local budget = read_budget(9, now)
local rules = read_rules(16, 3)

-- Rate limits first: a request refused by one records nothing anywhere.
local failing, wait = 0, 0
local full, full_wait = 0, 0
for i, rule in ipairs(rules) do
  measure(rule, now)
  local need = tokens
  if rule.kind ~= 't' then need = 1 end
  if rule.kind == 'c' then
    if rule.used >= rule.limit then full, full_wait = i, retry_after(rule, 1, now) end
  elseif rule.used >= rule.limit or rule.used + need > rule.limit then
    local this = retry_after(rule, need, now)
    -- The failing rule that clears last names the rejection; one that never clears wins.
    if failing == 0 or (wait ~= -1 and (this == -1 or this > wait)) then
      failing, wait = i, this
    end
  end
end

local function reply(status, n, expires, retry)
  local out = { status, now, n, expires, -1, -1, -1, -1, retry, failing }
  if budget then
    out[5], out[6], out[7], out[8] = budget.spent, budget.reserved, budget.start, budget.finish
  end
  for _, rule in ipairs(rules) do
    out[#out + 1] = rule.used
    out[#out + 1] = rule.reset
  end
  return out
end

local function rejected(status, retry)
  for _, rule in ipairs(rules) do rule.reset = reset_of(rule, now) end
  return reply(status, 0, 0, retry)
end

-- A window's wait is known, a slot's is not (streams end when they end): the concurrency
-- rule names the rejection only when no window rule fails.
if failing == 0 and full > 0 then failing, wait = full, full_wait end
if failing > 0 then return rejected(2, wait) end

-- An exhausted budget admits nothing, not even a zero reservation.
if budget then
  local remaining = math.max(0, budget.limit - budget.spent - budget.reserved)
  if remaining <= 0 or reserve > remaining then
    local retry = budget.finish - now
    if budget.finish < 0 or reserve > budget.limit or budget.limit == 0 then retry = -1 end
    return rejected(3, retry)
  end
end

local n = redis.call('HINCRBY', base, 'seq', 1)
if n == 1 then
  -- A new scope hash (first use, or the old one expired while a long window still holds
  -- entries): number from the time, so no number is reused in a window or a stale id.
  n = now * 1000 + 1
  redis.call('HSET', base, 'seq', int(n), 'scope', ARGV[5])
end
redis.call('HINCRBY', base, 'on', int(reserve))
local expires = now + ttl
local rkey = base .. ':r:' .. int(n)
local requests, weighted = {}, {}
for _, rule in ipairs(rules) do
  if rule.kind == 'c' then
    -- The slot is the reservation's place in the index, added below.
    rule.used = rule.used + 1
  elseif rule.kind == 't' then
    redis.call('ZADD', rule.zkey, int(now), int(n))
    redis.call('PEXPIRE', rule.zkey, int(rule.window + GRACE))
    redis.call('HSET', rule.wkey, int(n), int(tokens))
    redis.call('HINCRBY', rule.wkey, '#', int(tokens))
    redis.call('PEXPIRE', rule.wkey, int(rule.window + GRACE))
    rule.used = rule.used + tokens
    if tokens > 0 then rule.reset = rule.window else rule.reset = reset_of(rule, now) end
    weighted[#weighted + 1] = int(rule.window)
  else
    redis.call('ZADD', rule.zkey, int(now), int(n))
    redis.call('PEXPIRE', rule.zkey, int(rule.window + GRACE))
    rule.used = rule.used + 1
    rule.reset = rule.window
    requests[#requests + 1] = int(rule.window)
  end
end
local fields = { 'st', 'open', 'a', int(reserve), 'n', int(tokens), 'c', int(now),
  'x', int(expires), 'q', table.concat(requests, ','), 't', table.concat(weighted, ',') }
if budget then
  budget.reserved = add_reserved(budget.key, reserve)
  for _, v in ipairs({ 'b', budget.suffix, 'ps', int(budget.start), 'pe', int(budget.finish),
    'l', int(budget.limit), 'p', ARGV[14] }) do fields[#fields + 1] = v end
end
redis.call('HSET', rkey, unpack(fields))
redis.call('ZADD', index, int(expires), int(n))
for _, rule in ipairs(rules) do
  if rule.kind == 'c' then rule.reset = reset_of(rule, now) end
end
if ARGV[15] ~= '' then
  -- Found by releaseByKey while the reservation can be open, and while its tombstone can
  -- still say how it ended (a caller that lost this reply holds no id to extend it with).
  redis.call('SET', base .. ':k:' .. ARGV[15], int(n), 'PX', int(ttl + GRACE + RETENTION))
end

if budget and budget.finish < 0 then
  -- Lifetime money never resets, so nothing that holds it may expire: not the budget,
  -- not this reservation while open, not the scope's hash and index.
  redis.call('HSET', base, 'life', 1)
  scope_life = true
  redis.call('PERSIST', base)
  redis.call('PERSIST', index)
else
  -- Everything that holds this reservation's money lives until its period and its TTL are
  -- over, so an unswept expiry is still found (and charged) however long the scope idles.
  local horizon = expires
  if budget then horizon = math.max(budget.finish, expires) end
  horizon = horizon + GRACE
  redis.call('PEXPIRE', rkey, int(horizon - now))
  if budget then keep_budget(budget, horizon, now) end
  keep_scope(math.max(horizon, now + RETENTION), now)
  -- The index may have just been created (it is deleted when empty): give it the scope's TTL.
  if not scope_life then redis.call('PEXPIRE', index, int(scope_until - now)) end
end
return reply(1, n, expires, 0)
`,
};

/**
 * settle: charge the actual cost to the reservation's period, release the rest, and
 * replace its token estimate in its tokens windows (at the admission's timestamp).
 *
 * KEYS[1] scope hash, KEYS[2] expiry index, KEYS[3] the reservation's hash
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace
 * ARGV[5] reservation number, ARGV[6] costNanos, ARGV[7] actual tokens
 *
 * Reply: { 1, now, ...reservation before it ended, spent, reserved } (see
 *   reservation_reply), or { 0 unknown | 2 settled | 3 released | 4 expired, now }.
 */
export const SETTLE: LuaScript = {
  name: 'settle',
  source: `${LIBRARY}
local now = clock_now()
local scope = load_scope('scope')[3]
sweep(now)
local r, ended = open_reservation(now, KEYS[3])
if not r then return ended end
local n, cost, tokens = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
for window in string.gmatch(r.t, '%d+') do set_weight(window, n, tokens, false) end
local b = budget_of(r)
if b then
  b.spent = add_capped(b.key, 's', cost)
  b.reserved = add_reserved(b.key, -r.a)
  keep_budget(b, math.max(b.finish, r.x) + GRACE, now)
end
redis.call('ZREM', index, n)
redis.call('HINCRBY', base, 'on', int(-r.a))
tombstone(KEYS[3], 'settled')
keep_scope(now + RETENTION, now)
return reservation_reply(1, now, scope, r, b)
`,
};

/**
 * release: undo an admission — free the reservation and take its request and tokens out
 * of every window it was counted in, as if it had never been admitted.
 *
 * KEYS[1] scope hash, KEYS[2] expiry index, KEYS[3] the reservation's hash
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace
 * ARGV[5] reservation number
 *
 * Reply: as settle.
 */
export const RELEASE: LuaScript = {
  name: 'release',
  source: `${LIBRARY}
local now = clock_now()
local scope = load_scope('scope')[3]
sweep(now)
return release_reservation(now, scope, KEYS[3], ARGV[5])
`,
};

/**
 * releaseByKey: release, for the reservation a scope admitted under an admission key —
 * for a caller whose admit reply was lost (the script ran, the connection dropped), so it
 * holds no reservation id.
 *
 * KEYS[1] scope hash, KEYS[2] expiry index, KEYS[3] `<base>:k:<sha>`: the admission key's
 *   entry (its value is the reservation number)
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace
 *
 * Reply: as release, with the reservation number appended when it ended the reservation
 *   ({ 1, now, ...reservation, spent, reserved, number }); { 0, now } when no admission
 *   is recorded under the key (it never ran, or was forgotten).
 */
export const RELEASE_BY_KEY: LuaScript = {
  name: 'releaseByKey',
  source: `${LIBRARY}
local now = clock_now()
local scope = load_scope('scope')[3]
sweep(now)
local n = redis.call('GET', KEYS[3])
if not n then return { 0, now } end
local out = release_reservation(now, scope, base .. ':r:' .. n, n)
if out[1] == 1 then out[#out + 1] = n end
return out
`,
};

/**
 * extend: grow (if it fits in the remaining budget of the reservation's own period) or
 * shrink an open reservation, add to its token estimate, and/or push back its expiry.
 *
 * KEYS[1] scope hash, KEYS[2] expiry index, KEYS[3] the reservation's hash
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace
 * ARGV[5] reservation number, ARGV[6] addNanos (may be negative), ARGV[7] addTokens
 *   (may be negative), ARGV[8] ttlMs ('' = keep the expiry)
 *
 * Reply: { 1 extended | 5 refused for budget, now, ...reservation after the call, spent,
 *   reserved }, or { 0 | 2 | 3 | 4, now } when it had ended (see settle).
 */
export const EXTEND: LuaScript = {
  name: 'extend',
  source: `${LIBRARY}
local now = clock_now()
local scope = load_scope('scope')[3]
sweep(now)
local r, ended = open_reservation(now, KEYS[3])
if not r then return ended end
local n, add, add_tokens = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local b = budget_of(r)
if b and add > 0 and add > math.max(0, r.l - b.spent - b.reserved) then
  return reservation_reply(5, now, scope, r, b)
end
local amount = math.max(0, r.a + add)
if amount ~= r.a then
  if b then b.reserved = add_reserved(b.key, amount - r.a) end
  redis.call('HINCRBY', base, 'on', int(amount - r.a))
  r.a = amount
end
if add_tokens ~= 0 then
  for window in string.gmatch(r.t, '%d+') do set_weight(window, n, add_tokens, true) end
  r.n = math.max(0, r.n + add_tokens)
end
if ARGV[8] ~= '' then
  r.x = now + tonumber(ARGV[8])
  redis.call('ZADD', index, int(r.x), n)
end
redis.call('HSET', KEYS[3], 'a', int(r.a), 'n', int(r.n), 'x', int(r.x))
if not (b and b.finish < 0) then
  -- As at admission: whatever holds this reservation lives until it and its period are over.
  local horizon = r.x
  if b then horizon = math.max(b.finish, r.x) end
  horizon = horizon + GRACE
  redis.call('PEXPIRE', KEYS[3], int(horizon - now))
  if b then keep_budget(b, horizon, now) end
  keep_scope(horizon, now)
end
return reservation_reply(1, now, scope, r, b)
`,
};

/**
 * getState: one scope's budget for the current period, its windows and its reservation
 * counts, after sweeping expired reservations and trimming windows (it writes nothing
 * else, and creates no key).
 *
 * KEYS[1] scope hash, KEYS[2] expiry index, KEYS[3..] rule keys as for admit
 * ARGV[1..4] clock, expiry policy, tombstone retention, grace
 * ARGV[5..9] budget as for admit's ARGV[9..13]
 * ARGV[10] number of rules; then (kind, windowMs, limit) per rule, as for admit
 *
 * Reply: { now, open, openNanos, expired, expiredNanos, spent, reserved, periodStart,
 *   periodEnd, then used, resetMs per rule } — budget figures -1 without a budget.
 */
export const GET_STATE: LuaScript = {
  name: 'getState',
  source: `${LIBRARY}
local now = clock_now()
local stats = load_scope('on', 'ex', 'exn')
local swept, swept_nanos = sweep(now)
local out = { now, redis.call('ZCARD', index),
  math.min(MAX_NANOS, math.max(0, (tonumber(stats[3]) or 0) - swept_nanos)),
  (tonumber(stats[4]) or 0) + swept, math.min(MAX_NANOS, (tonumber(stats[5]) or 0) + swept_nanos),
  -1, -1, -1, -1 }
local budget = read_budget(5, now)
if budget then
  out[6], out[7], out[8], out[9] = budget.spent, budget.reserved, budget.start, budget.finish
end
for _, rule in ipairs(read_rules(10, 3)) do
  measure(rule, now)
  out[#out + 1] = rule.used
  out[#out + 1] = reset_of(rule, now)
end
return out
`,
};

/**
 * Test support: core's periodBounds() computed by the same Lua the scripts use, so a test
 * can compare the two over many instants. KEYS: none. ARGV[1] kind ('lifetime', 'month',
 * 'window'), ARGV[2] window ms, ARGV[3] offset ms, ARGV[4] epoch ms. Reply: { start, end }.
 */
export const PERIOD_BOUNDS_PROBE: LuaScript = {
  name: 'periodBoundsProbe',
  source: `${CALENDAR}
local s, e = period_bounds(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return { s, e }
`,
};

export const SCRIPTS = { ADMIT, SETTLE, RELEASE, RELEASE_BY_KEY, EXTEND, GET_STATE } as const;

/**
 * claimOnce: KEYS[1] = \`<base>:once:<hash of the name>\` (the scope's slot). ARGV: the
 * injected clock ('' = this server's), expiresAt (store time). The mark holds its expiry:
 * a claim wins when no mark is held beyond now, and leaves one until expiresAt (the key
 * itself outlives it by a minute of real time, then Redis drops it). Reply: 1 won, 0 not.
 */
export const CLAIM_ONCE: LuaScript = {
  name: 'claimOnce',
  source: `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local expires = tonumber(ARGV[2])
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held > now then return 0 end
if expires > now then
  redis.call('SET', KEYS[1], string.format('%d', expires), 'PX', string.format('%d', expires - now + 60000))
else
  redis.call('DEL', KEYS[1])
end
return 1
`,
};
