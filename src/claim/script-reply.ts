// The limits script's reply (src/claim/script.ts): its shape, checked before it is read, and the
// answers to the settles a claim carried (docs/design.md, "Token budgets").
import { isSettleReplies, settleResults } from "./redis-budget.ts";
import { SCRIPT_VERDICTS } from "./script.ts";
import type { Ride } from "./ride.ts";

/**
 * Six whole numbers (with a budget ten: the hold, the day's and the month's tokens left, the
 * tokens charged from expired holds); a replay's verdict (1) gives the value found instead
 * (with a budget, and the hold of this claim's reservation, -1 when none).
 */
export type ScriptReply = [number, number, number, number, number, number, ...(string | number | number[])[]];

export function isScriptReply(reply: unknown): reply is ScriptReply {
	if (!Array.isArray(reply)) return false;
	// The answers to the settles this claim carried come last, as one more element: each a settle script's reply.
	const carried: unknown = reply[reply.length - 1];
	if (Array.isArray(carried)) {
		if (!isSettleReplies(carried)) return false;
		reply = reply.slice(0, -1);
	}
	if (!Array.isArray(reply) || reply.length < 6) return false;
	if (!reply.slice(0, 6).every((value) => typeof value === "number" && Number.isInteger(value))) return false;
	if (SCRIPT_VERDICTS[reply[0] as number] === undefined) return false;
	if (reply[0] === 1) return typeof reply[6] === "string" && (reply.length === 7 || (reply.length === 8 && Number.isInteger(reply[7])));
	return reply.length === 6 || (reply.length === 10 && reply.slice(6).every((value) => Number.isInteger(value)));
}

/** Hands each carried settle what the claim's script found (the reply's last element, taken off it); null for all when the answers do not match. */
export function arrive(rides: Ride[], reply: ScriptReply): void {
	const answers = Array.isArray(reply[reply.length - 1]) ? (reply.pop() as number[]) : [];
	const results = answers.length === rides.length * 3 ? settleResults(answers) : null;
	rides.forEach((ride, i) => ride.arrive(results === null ? null : results[i]!));
}
