/**
 * The one Upstash command of a limited client's request (docs/design.md, "Per-client limits",
 * "Token budgets"): the replay claim, the limit check and the token reservation in one atomic
 * Lua script, so two isolates can never both take the last unit of a quota or the last tokens
 * of a budget, a replay spends nothing, and a refusal spends nothing but claims the replay key
 * all the same (its bytes are never executed later), under the value `<value>:refused:<limit>`,
 * so a confirming run can tell its own refusal.
 *
 * KEYS: 1 the replay key, 2 the `rpm` log (a sorted set of accepted requests by time),
 *       3 the `rpd` counter of the UTC day, 4 the in-flight set (slots by lease end); with a
 *       budget, 5 and 6 the token windows of this UTC day and the one before, 7 and 8 of this
 *       UTC month and the one before (hashes of `used` and `held`), 9 the reservations by lease
 *       end, 10 their holds (`s:<report>:<hold>:<counted>` once settled).
 * ARGV: 1 the replay value (unique: it is also this request's entry in the log and the set),
 *       2 its expiry (ms), 3 now (ms, the gateway's clock), 4 rpm, 5 rpd, 6 concurrent (0: not
 *       limited), 7 the day counter's expiry (epoch ms), 8 a slot's lease (ms); with a budget,
 *       9 daily_tokens, 10 monthly_tokens (0: none), 11 the hold asked for, 12 the reservation's
 *       id (`<client>:<day>:<month>:<nonce>`, `-` for a window it does not hold in), 13 its lease
 *       end (epoch ms), 14 to 17 the names of the windows of KEYS 5 to 8, 18 and 19 the day's and
 *       the month's window expiry (epoch ms), 20 the reservations' expiry (ms); then, when the
 *       claim carries settles of this client's earlier reservations, 21 how many, and from 22 each
 *       one's id, tokens reported and report id (their windows among KEYS 5 to 8).
 * Returns { verdict, retry after ms, rpm left, rpm window reset ms, rpd left, concurrent left },
 * a left of -1 where that limit is not set; with a budget also { hold, day's tokens left,
 * month's tokens left, tokens charged from expired holds }. Verdict 0 claimed, 1 replay, 2 rpd,
 * 3 rpm, 4 concurrent, 5 daily_tokens, 6 monthly_tokens. A replay also returns the value found,
 * so a claim whose answer was lost can tell its own (and, with a budget, its reservation's hold).
 * Before the budget is read, up to 16 reservations whose lease ended are charged their whole
 * hold (held moves to used in the windows they held in that still exist).
 * Carried settles run first, whatever the verdict, by the settle script's rules (src/claim/settle-script.ts), and
 * their answers come last, as one more element: { status, hold, tokens counted } for each, in order.
 */
export const LIMITED_CLAIM_SCRIPT = `local budgeted = #KEYS > 4
local now = tonumber(ARGV[3])
local function windowOf(name, current, currentKey, previous, previousKey)
  if name == current then return currentKey end
  if name == previous then return previousKey end
  return nil
end
local function move(id, held, used)
  local day, month = string.match(id, ":([^:]*):([^:]*):[^:]*$")
  for _, key in ipairs({windowOf(day, ARGV[14], KEYS[5], ARGV[15], KEYS[6]) or "", windowOf(month, ARGV[16], KEYS[7], ARGV[17], KEYS[8]) or ""}) do
    if key ~= "" and redis.call("EXISTS", key) == 1 then
      redis.call("HINCRBY", key, "held", -held)
      redis.call("HINCRBY", key, "used", used)
    end
  end
end
local settled = nil
if budgeted and #ARGV > 20 then
  settled = {}
  for i = 22, 21 + 3 * tonumber(ARGV[21]), 3 do
    local id, report, status, held, used = ARGV[i], ARGV[i + 2], 0, 0, 0
    local value = redis.call("HGET", KEYS[10], id)
    local by, hold, counted = string.match(value or "", "^s:([^:]*):(%d+):(%d+)$")
    if by == report then status, held, used = 3, tonumber(hold), tonumber(counted)
    elseif string.sub(value or "", 1, 1) == "s" then status = 1
    elseif value then
      held = tonumber(value)
      if tonumber(redis.call("ZSCORE", KEYS[9], id) or "0") <= now then status = 2
      else
        status, used = 3, math.min(tonumber(ARGV[i + 1]), held)
        move(id, held, used)
        redis.call("HSET", KEYS[10], id, "s:" .. report .. ":" .. held .. ":" .. used)
      end
    end
    settled[#settled + 1] = status
    settled[#settled + 1] = held
    settled[#settled + 1] = used
  end
end
local function out(values)
  if settled then values[#values + 1] = settled end
  return values
end
local found = redis.call("GET", KEYS[1])
if found then
  if budgeted then return out({1, 0, -1, 0, -1, -1, found, tonumber(redis.call("HGET", KEYS[10], ARGV[12]) or "-1") or -1}) end
  return {1, 0, -1, 0, -1, -1, found}
end
local rpm, rpd, concurrent = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local hold, dayLeft, monthLeft, expired = 0, -1, -1, 0
local function reply(verdict, retry, rpmLeft, resetMs, rpdLeft, concurrentLeft)
  if budgeted then return out({verdict, retry, rpmLeft, resetMs, rpdLeft, concurrentLeft, hold, dayLeft, monthLeft, expired}) end
  return {verdict, retry, rpmLeft, resetMs, rpdLeft, concurrentLeft}
end
local function refuse(name, verdict, retry, rpmLeft, resetMs, rpdLeft, concurrentLeft)
  redis.call("SET", KEYS[1], ARGV[1] .. ":refused:" .. name, "PX", ARGV[2])
  return reply(verdict, retry, rpmLeft, resetMs, rpdLeft, concurrentLeft)
end
local daily, monthly = 0, 0
if budgeted then
  daily, monthly, hold = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", KEYS[9], "-inf", now, "LIMIT", 0, 16)) do
    local held = tonumber(redis.call("HGET", KEYS[10], id) or "s")
    if held then
      move(id, held, held)
      expired = expired + held
    end
    redis.call("ZREM", KEYS[9], id)
    redis.call("HDEL", KEYS[10], id)
  end
  if daily > 0 then
    local day = redis.call("HMGET", KEYS[5], "used", "held")
    dayLeft = daily - tonumber(day[1] or "0") - tonumber(day[2] or "0")
    if dayLeft < hold then hold = dayLeft end
  end
  if monthly > 0 then
    local month = redis.call("HMGET", KEYS[7], "used", "held")
    monthLeft = monthly - tonumber(month[1] or "0") - tonumber(month[2] or "0")
    if monthLeft < hold then hold = monthLeft end
  end
  if hold < 0 then hold = 0 end
  if monthly > 0 and monthLeft <= 0 then return refuse("monthly_tokens", 6, 0, -1, 0, -1, -1) end
  if daily > 0 and dayLeft <= 0 then return refuse("daily_tokens", 5, 0, -1, 0, -1, -1) end
end
local usedToday, inWindow, windowResetMs, inFlight = 0, 0, 60000, 0
if rpd > 0 then
  usedToday = tonumber(redis.call("GET", KEYS[3]) or "0")
  if usedToday >= rpd then return refuse("rpd", 2, 0, -1, 0, 0, -1) end
end
local rpdLeft = -1
if rpd > 0 then rpdLeft = rpd - usedToday end
if rpm > 0 then
  redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - 60000)
  inWindow = redis.call("ZCARD", KEYS[2])
  if inWindow > 0 then
    windowResetMs = tonumber(redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")[2]) + 60000 - now
  end
  if inWindow >= rpm then return refuse("rpm", 3, windowResetMs, 0, windowResetMs, rpdLeft, -1) end
end
local rpmLeft = -1
if rpm > 0 then rpmLeft = rpm - inWindow end
if concurrent > 0 then
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now)
  inFlight = redis.call("ZCARD", KEYS[4])
  if inFlight >= concurrent then return refuse("concurrent", 4, 1000, rpmLeft, windowResetMs, rpdLeft, 0) end
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
local concurrentLeft = -1
if rpm > 0 then
  redis.call("ZADD", KEYS[2], now, ARGV[1])
  redis.call("PEXPIRE", KEYS[2], 60000)
  rpmLeft = rpmLeft - 1
end
if rpd > 0 then
  redis.call("INCR", KEYS[3])
  redis.call("PEXPIREAT", KEYS[3], ARGV[7])
  rpdLeft = rpdLeft - 1
end
if concurrent > 0 then
  redis.call("ZADD", KEYS[4], now + tonumber(ARGV[8]), ARGV[1])
  redis.call("PEXPIRE", KEYS[4], ARGV[8])
  concurrentLeft = concurrent - inFlight - 1
end
if budgeted then
  if daily > 0 then
    redis.call("HINCRBY", KEYS[5], "held", hold)
    redis.call("PEXPIREAT", KEYS[5], ARGV[18])
    dayLeft = dayLeft - hold
  end
  if monthly > 0 then
    redis.call("HINCRBY", KEYS[7], "held", hold)
    redis.call("PEXPIREAT", KEYS[7], ARGV[19])
    monthLeft = monthLeft - hold
  end
  redis.call("ZADD", KEYS[9], ARGV[13], ARGV[12])
  redis.call("PEXPIRE", KEYS[9], ARGV[20])
  redis.call("HSET", KEYS[10], ARGV[12], hold)
  redis.call("PEXPIRE", KEYS[10], ARGV[20])
end
return reply(0, 0, rpmLeft, windowResetMs, rpdLeft, concurrentLeft)
`;

/** SHA-1 of the script, for `EVALSHA` (a test recomputes it, so the two cannot drift apart). */
export const LIMITED_CLAIM_SHA1 = "eb111716418f52408545028b7d07850faa89f612";

/**
 * A memory claim's write-back under a limit policy (docs/design.md, "Per-client limits"): its
 * replay key with `SET NX PX GET`, and the quota it spent in this isolate's memory during an
 * outage added to the client's counters (they are additive), unless the key holds the claim's
 * own value (its first run landed: the quota was spent in Redis then).
 *
 * KEYS: 1 the replay key, 2 the `rpm` log, 3 the `rpd` counter of the day it was spent.
 * ARGV: 1 the claim's value, 2 its remaining expiry (ms), 3 when it was spent (ms), 4 rpm spent
 *       (1 or 0), 5 rpd spent (1 or 0), 6 the day counter's expiry (epoch ms), 7 now (ms).
 * Returns the value found under the key, or nil when it was free (and is now written).
 */
export const WRITE_BACK_SCRIPT = `local found = redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2], "GET")
if found == ARGV[1] then return found end
if ARGV[4] == "1" and tonumber(ARGV[3]) > tonumber(ARGV[7]) - 60000 then
  redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
  redis.call("PEXPIRE", KEYS[2], 60000)
end
if ARGV[5] == "1" then
  redis.call("INCR", KEYS[3])
  redis.call("PEXPIREAT", KEYS[3], ARGV[6])
end
return found
`;

/** SHA-1 of the write-back script (a test recomputes it). */
export const WRITE_BACK_SHA1 = "01ad42aa49444d9179f5d5e92202a56f7617e14f";

/** The value a refusal leaves under the replay key: the claim's own, and the limit that refused it. */
export function refusedValue(value: string, limit: string): string {
	return `${value}:refused:${limit}`;
}

/** The verdicts the script returns, by number. */
export const SCRIPT_VERDICTS = ["claimed", "duplicate", "rpd", "rpm", "concurrent", "daily_tokens", "monthly_tokens"] as const;
