/**
 * Reservations settled from the origin's reports (docs/design.md, "Token budgets"), one or a
 * batch (the settles no claim carried in time, of any clients): the first report of each wins.
 * Its hold leaves the windows it was held in (those that still exist), and what was spent, at
 * most the hold, is used there; the hold's entry becomes `s:<report>:<hold>:<counted>` (settled)
 * until the sweep drops it with its lease, so a second report finds it settled and changes
 * nothing. The same report sent again (its first answer was lost) is answered as the first was.
 *
 * KEYS: for each settle in turn, its client's reservations by lease end, their holds, then the
 *       token windows it holds in.
 * ARGV: 1 now (ms); then for each settle its id, the tokens reported, the report's own id, and
 *       how many keys it has.
 * Returns { status, hold, tokens counted } for each, in order: status 0 unknown, 1 settled
 * already, 2 its lease ended (left to the sweep, which charges the whole hold), 3 settled (now,
 * or by this same report).
 */
export const SETTLE_SCRIPT = `local now = tonumber(ARGV[1])
local answers = {}
local k = 1
for i = 2, #ARGV, 4 do
  local id, report, keys = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3])
  local status, held, used = 0, 0, 0
  local value = redis.call("HGET", KEYS[k + 1], id)
  local by, hold, counted = string.match(value or "", "^s:([^:]*):(%d+):(%d+)$")
  if by == report then status, held, used = 3, tonumber(hold), tonumber(counted)
  elseif string.sub(value or "", 1, 1) == "s" then status = 1
  elseif value then
    held = tonumber(value)
    if tonumber(redis.call("ZSCORE", KEYS[k], id) or "0") <= now then status = 2
    else
      status, used = 3, math.min(tonumber(ARGV[i + 1]), held)
      for j = k + 2, k + keys - 1 do
        if redis.call("EXISTS", KEYS[j]) == 1 then
          redis.call("HINCRBY", KEYS[j], "held", -held)
          redis.call("HINCRBY", KEYS[j], "used", used)
        end
      end
      redis.call("HSET", KEYS[k + 1], id, "s:" .. report .. ":" .. held .. ":" .. used)
    end
  end
  answers[#answers + 1] = status
  answers[#answers + 1] = held
  answers[#answers + 1] = used
  k = k + keys
end
return answers
`;

/** SHA-1 of the settle script (a test recomputes it). */
export const SETTLE_SHA1 = "73567d01027c4297aa6c620899ae5069e80b230a";
