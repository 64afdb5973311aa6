/**
 * The one Upstash command of a limited client's request (docs/design.md, "Per-client limits"):
 * the replay claim and the limit check in one atomic Lua script, so two isolates can never
 * both take the last unit of a quota, a replay spends nothing, and a refusal spends nothing
 * but claims the replay key all the same (its bytes are never executed later), under the
 * value `<value>:refused:<limit>`, so a confirming run can tell its own refusal.
 *
 * KEYS: 1 the replay key, 2 the `rpm` log (a sorted set of accepted requests by time),
 *       3 the `rpd` counter of the UTC day, 4 the in-flight set (slots by lease end).
 * ARGV: 1 the replay value (unique: it is also this request's entry in the log and the set),
 *       2 its expiry (ms), 3 now (ms, the gateway's clock), 4 rpm, 5 rpd, 6 concurrent (0: not
 *       limited), 7 the day counter's expiry (epoch ms), 8 a slot's lease (ms).
 * Returns { verdict, retry after ms, rpm left, rpm window reset ms, rpd left, concurrent left },
 * a left of -1 where that limit is not set; verdict 0 claimed, 1 replay, 2 rpd, 3 rpm, 4 concurrent.
 * A replay also returns the value found, so a claim whose answer was lost can tell its own.
 */
export const LIMITED_CLAIM_SCRIPT = `local found = redis.call("GET", KEYS[1])
if found then return {1, 0, -1, 0, -1, -1, found} end
local function refuse(name, reply)
  redis.call("SET", KEYS[1], ARGV[1] .. ":refused:" .. name, "PX", ARGV[2])
  return reply
end
local now = tonumber(ARGV[3])
local rpm, rpd, concurrent = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local usedToday, inWindow, windowResetMs, inFlight = 0, 0, 60000, 0
if rpd > 0 then
  usedToday = tonumber(redis.call("GET", KEYS[3]) or "0")
  if usedToday >= rpd then return refuse("rpd", {2, 0, -1, 0, 0, -1}) end
end
local rpdLeft = -1
if rpd > 0 then rpdLeft = rpd - usedToday end
if rpm > 0 then
  redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - 60000)
  inWindow = redis.call("ZCARD", KEYS[2])
  if inWindow > 0 then
    windowResetMs = tonumber(redis.call("ZRANGE", KEYS[2], 0, 0, "WITHSCORES")[2]) + 60000 - now
  end
  if inWindow >= rpm then return refuse("rpm", {3, windowResetMs, 0, windowResetMs, rpdLeft, -1}) end
end
local rpmLeft = -1
if rpm > 0 then rpmLeft = rpm - inWindow end
if concurrent > 0 then
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now)
  inFlight = redis.call("ZCARD", KEYS[4])
  if inFlight >= concurrent then return refuse("concurrent", {4, 1000, rpmLeft, windowResetMs, rpdLeft, 0}) end
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
return {0, 0, rpmLeft, windowResetMs, rpdLeft, concurrentLeft}
`;

/** SHA-1 of the script, for `EVALSHA` (a test recomputes it, so the two cannot drift apart). */
export const LIMITED_CLAIM_SHA1 = "0f61377af2c2f9ae0cbb600c826576c8fb34e4e0";

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
export const SCRIPT_VERDICTS = ["claimed", "duplicate", "rpd", "rpm", "concurrent"] as const;

/**
 * The Redis keys of one client's limits, under the replay prefix (so one ACL pattern covers
 * them; a replay key's suffix is a hex signature or `v2:...`, never `limit:`).
 */
export function limitKeys(prefix: string, clientId: string, day: string): { rpm: string; rpd: string; inFlight: string } {
	return {
		rpm: `${prefix}limit:rpm:${clientId}`,
		rpd: `${prefix}limit:rpd:${clientId}:${day}`,
		inFlight: `${prefix}limit:inflight:${clientId}`,
	};
}
