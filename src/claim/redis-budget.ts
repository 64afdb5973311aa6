// The token budget's part of the limits script's call, and of a settle: which keys and
// arguments it sends, and how a reservation's id names its windows (docs/design.md, "Token budgets").
import { CLIENT_ID_PATTERN } from "../auth/grammar.ts";
import { utcDay, utcMonth, type LimitState } from "../limits/policy.ts";
import { budgetKeys } from "./keys.ts";
import type { LimitedClaimRequest, SettleResult } from "./store.ts";

/** A window outlives its end by the longest lease and this much, so a late report or a sweep still finds it. */
const WINDOW_SLACK_MS = 3_600_000;
/** `<client id>:<YYYY-MM-DD or ->:<YYYY-MM or ->:<nonce>` (the nonce a random UUID): the windows a reservation holds in. */
const RESERVATION_ID = /^([^:]{1,64}):(\d{4}-\d{2}-\d{2}|-):(\d{4}-\d{2}|-):([0-9a-f-]{32,36})$/;

/** The keys and arguments a budgeted claim adds to the limits script's (KEYS 5 to 10, ARGV 9 to 20), and its reservation's id. */
export function budgetCall(
	prefix: string,
	request: LimitedClaimRequest,
	now: number,
	leaseMs: number,
): { id: string; keys: string[]; args: (string | number)[]; holdsIn(day: string, month: string): boolean } {
	const { policy, clientId } = request;
	const budget = policy.budget!;
	const { day, previous: previousDay, endsInMs: dayEndsInMs } = utcDay(now);
	const { month, previous: previousMonth, endsInMs: monthEndsInMs } = utcMonth(now);
	const base = `${prefix}limit:${clientId}:tokens:`;
	const id = reservationId(request, now);
	return {
		id,
		// budgetKeys()'s names, built without its object: this runs for every budgeted request.
		keys: [`${base}day:${day}`, `${base}day:${previousDay}`, `${base}month:${month}`, `${base}month:${previousMonth}`, `${base}leases`, `${base}holds`],
		args: [
			budget.daily ?? 0,
			budget.monthly ?? 0,
			request.budget!.hold,
			id,
			now + leaseMs,
			day,
			previousDay,
			month,
			previousMonth,
			now + dayEndsInMs + leaseMs + WINDOW_SLACK_MS,
			now + monthEndsInMs + leaseMs + WINDOW_SLACK_MS,
			leaseMs + WINDOW_SLACK_MS,
		],
		// Whether a reservation holding in these windows (`-`: none) has them among this call's keys, so this call can settle it.
		holdsIn: (reservationDay, reservationMonth) =>
			(reservationDay === "-" || reservationDay === day || reservationDay === previousDay) &&
			(reservationMonth === "-" || reservationMonth === month || reservationMonth === previousMonth),
	};
}

/** The id of the reservation a budgeted claim sent at `now` makes: `<client id>:<day or ->:<month or ->:<nonce>`. */
export function reservationId(request: Pick<LimitedClaimRequest, "clientId" | "policy" | "budget">, now: number): string {
	const budget = request.policy.budget!;
	return `${request.clientId}:${budget.daily === null ? "-" : utcDay(now).day}:${budget.monthly === null ? "-" : utcMonth(now).month}:${request.budget!.nonce}`;
}

/** What a budgeted reply leaves: the tokens left in each window the client has, and when that window ends. */
export function tokenState(request: LimitedClaimRequest, now: number, dayLeft: number, monthLeft: number): Pick<LimitState, "dailyTokens" | "monthlyTokens"> {
	const budget = request.policy.budget!;
	return {
		dailyTokens: budget.daily === null ? null : { remaining: dayLeft, resetMs: utcDay(now).endsInMs },
		monthlyTokens: budget.monthly === null ? null : { remaining: monthLeft, resetMs: utcMonth(now).endsInMs },
	};
}

/** How long a refusal by a token window lasts: until that window ends. */
export function windowRetryMs(limit: "daily_tokens" | "monthly_tokens", now: number): number {
	return limit === "daily_tokens" ? utcDay(now).endsInMs : utcMonth(now).endsInMs;
}

/** Whose reservation `id` is and the windows it holds in (`-`: none), or null when the id is not one this gateway gives. */
export function reservationWindows(id: string): { clientId: string; day: string; month: string } | null {
	const match = RESERVATION_ID.exec(id);
	if (match === null || !CLIENT_ID_PATTERN.test(match[1]!)) return null;
	const [, clientId, day, month] = match as unknown as [string, string, string, string];
	return { clientId, day, month };
}

/** The keys a settle of a reservation holding in these windows reads: its client's reservations, their holds, then its windows. */
export function windowKeys(prefix: string, { clientId, day, month }: { clientId: string; day: string; month: string }): string[] {
	const keys = budgetKeys(prefix, clientId);
	return [keys.leases, keys.holds, ...(day === "-" ? [] : [keys.day(day)]), ...(month === "-" ? [] : [keys.month(month)])];
}

/** The settle script's reply: { status, hold, tokens counted }. */
export type SettleReply = [number, number, number];

export function isSettleReply(reply: unknown): reply is SettleReply {
	return Array.isArray(reply) && reply.length === 3 && reply.every((value) => Number.isInteger(value)) && reply[0] >= 0 && reply[0] <= 3;
}

export function settleResult([status, hold, counted]: SettleReply): SettleResult {
	if (status === 3) return { status: "settled", hold, counted };
	return { status: status === 1 ? "already_settled" : status === 2 ? "expired" : "unknown" };
}

/** Settle replies one after another (the settle script's for a batch, or those a claim carried): threes. */
export function isSettleReplies(reply: unknown): reply is number[] {
	if (!Array.isArray(reply) || reply.length % 3 !== 0) return false;
	for (let i = 0; i < reply.length; i += 3) if (!isSettleReply(reply.slice(i, i + 3))) return false;
	return true;
}

/** What each settle of a batch found, in order. */
export function settleResults(answers: readonly number[]): SettleResult[] {
	const results: SettleResult[] = [];
	for (let i = 0; i < answers.length; i += 3) results.push(settleResult(answers.slice(i, i + 3) as SettleReply));
	return results;
}

/** A fresh reservation nonce: a random UUID (122 random bits, made natively). */
export function reservationNonce(): string {
	return crypto.randomUUID();
}

/** A report's own id (the settle scripts keep it with the settled mark): a random UUID. */
export function reportId(): string {
	return crypto.randomUUID();
}
