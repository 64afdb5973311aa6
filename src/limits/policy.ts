/**
 * Per-client limits (docs/design.md, "Per-client limits"): what one client may spend, and
 * which clients the operator named as metric labels.
 */

import type { Limit } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";

/** `rpm`, `rpd` or `concurrent` (the `limit` label of `agent_limit_refusals_total`). */
export type LimitName = Limit;

/** The sliding window of `rpm`. */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** One client's limits; null where a limit is not set. */
export interface LimitPolicy {
	/** At most this many accepted requests in any 60 s window. */
	readonly rpm: number | null;
	/** At most this many accepted requests per UTC day. */
	readonly rpd: number | null;
	/** At most this many requests in flight (a streamed answer counts until it ends). */
	readonly concurrent: number | null;
	/** The `client` label of this client's refusals: its id when the operator listed it, else "". */
	readonly label: string;
	/**
	 * Its token budget (`daily_tokens`, `monthly_tokens`, `token_hold`), absent when it has none:
	 * src/limits/config.ts reads it with the other fields (docs/design.md, "Token budgets").
	 */
	readonly budget?: TokenBudget;
}

/** A client's LLM tokens per UTC day and per UTC calendar month, reserved before the origin is called. */
export interface TokenBudget {
	/** `daily_tokens`: at most this many tokens used and held per UTC day; null when not set. */
	readonly daily: number | null;
	/** `monthly_tokens`: per UTC calendar month; null when not set. */
	readonly monthly: number | null;
	/** `token_hold`: the most one request may hold (and spend). @default 4096 */
	readonly hold: number;
}

/** `token_hold` where an entry gives none. */
export const DEFAULT_TOKEN_HOLD = 4096;

/**
 * The limits of every client: an id's own entry, else the `"*"` default. An entry replaces the
 * default as a whole, so `{}` exempts a client from it.
 */
export class ClientLimits {
	private readonly fallback: LimitPolicy | null;
	private readonly byClient: ReadonlyMap<string, LimitPolicy | null>;
	/** The client ids the operator listed as metric labels (bounded by the configuration). */
	readonly labelledClients: readonly string[];

	constructor(entries: ReadonlyMap<string, LimitPolicy>) {
		const byClient = new Map<string, LimitPolicy | null>();
		for (const [id, policy] of entries) if (id !== "*") byClient.set(id, hasLimit(policy) ? policy : null);
		this.byClient = byClient;
		const fallback = entries.get("*");
		this.fallback = fallback !== undefined && hasLimit(fallback) ? fallback : null;
		this.labelledClients = [...entries].filter(([id, policy]) => id !== "*" && policy.label !== "").map(([id]) => id);
	}

	/** The policy of a verified client id, or null when it has no limit at all (no cost, no headers). */
	policyFor(clientId: string): LimitPolicy | null {
		const own = this.byClient.get(clientId);
		return own === undefined ? this.fallback : own;
	}

	/** Whether any client has a `concurrent` limit (each of its answers then costs one more command). */
	get anyConcurrent(): boolean {
		if (this.fallback?.concurrent != null) return true;
		for (const policy of this.byClient.values()) if (policy?.concurrent != null) return true;
		return false;
	}
}

function hasLimit(policy: LimitPolicy): boolean {
	return policy.rpm !== null || policy.rpd !== null || policy.concurrent !== null || policy.budget !== undefined;
}

/** What is left of each limit the client has, after this request (null: that limit is not set). */
export interface LimitState {
	/** Requests left in the 60 s window, and when the oldest one in it leaves (ms from now). */
	rpm: { remaining: number; resetMs: number } | null;
	/** Requests left today, and when the UTC day ends (ms from now). */
	rpd: { remaining: number; resetMs: number } | null;
	/** Slots left for requests in flight. */
	concurrent: { remaining: number } | null;
	/** Tokens left (neither used nor held) in the UTC day's budget, and when the day ends (ms from now). */
	dailyTokens?: { remaining: number; resetMs: number } | null;
	/** Tokens left in the UTC month's budget, and when the month ends (ms from now). */
	monthlyTokens?: { remaining: number; resetMs: number } | null;
}

/** `CLIENT_LIMITS`'s reader of one entry (`readEntry` in src/limits/config.ts): its policy, or null when it breaks the rules. */
export type ReadEntry = (id: string, entry: unknown, problems: { problem(message: string): void; strict(message: string): void }) => LimitPolicy | null;

/** Where a client's record may carry limits of its own: the keyring (docs/design.md, "Keyring"). */
export interface RecordLimits {
	/** Asked after the client's signature verified against its record: from the keyring's cache. */
	limitsFor(clientId: string): Record<string, unknown> | undefined;
}

const INVALID = Symbol("invalid");

/**
 * Each verified client's policy (docs/design.md, "Per-client limits"): the limits its keyring
 * record carries, which replace its `CLIENT_LIMITS` entry as a whole, else its `CLIENT_LIMITS`
 * entry, else the `"*"` default. A record's limits are read with `CLIENT_LIMITS`'s rules, once
 * per cached record; a record never makes its id a metric label (labels are fixed when the
 * isolate starts); a record whose limits break the rules is logged and its id gets
 * `CLIENT_LIMITS`'s policy.
 */
export class LimitPolicies {
	private readonly configured: ClientLimits | null;
	private readonly records: RecordLimits | null;
	private readonly readEntry: ReadEntry;
	private readonly log: Logger;
	private readonly throttle: LogThrottle;
	private readonly parsed = new WeakMap<object, LimitPolicy | null | typeof INVALID>();

	/** `readEntry`: `CLIENT_LIMITS`'s reader of one entry (src/limits/config.ts), for the records' limits. */
	constructor(configured: ClientLimits | null, records: RecordLimits | null, readEntry: ReadEntry, log: Logger, now: () => number = Date.now) {
		this.configured = configured;
		this.records = records;
		this.readEntry = readEntry;
		this.log = log;
		this.throttle = new LogThrottle(10_000, now);
	}

	/** The policy of a verified client id, or null when it has no limit at all. */
	policyFor(clientId: string): LimitPolicy | null {
		const configured = this.configured?.policyFor(clientId) ?? null;
		const limits = this.records?.limitsFor(clientId);
		return limits === undefined ? configured : this.fromRecord(limits, configured);
	}

	private fromRecord(limits: Record<string, unknown>, configured: LimitPolicy | null): LimitPolicy | null {
		let policy = this.parsed.get(limits);
		if (policy === undefined) {
			// Production's bounds are CLIENT_LIMITS's concern; a record is refused only for what no environment takes.
			const read = this.readEntry("record", limits, { problem: () => {}, strict: () => {} });
			if (read === null) policy = INVALID;
			else if (!hasLimit(read)) policy = null;
			else policy = { ...read, label: "" };
			this.parsed.set(limits, policy);
		}
		if (policy !== INVALID) return policy;
		const suppressed = this.throttle.admit("invalid");
		if (suppressed !== null) this.log.warn("a keyring record's limits break the CLIENT_LIMITS rules: CLIENT_LIMITS applies to it", { suppressed });
		return configured;
	}
}

/** The last day's name, so a request does not format a date (one per isolate per day). */
let lastDay = { number: Number.NaN, name: "", previous: "" };

/** The UTC day of `now` as `YYYY-MM-DD`, the day before it, and the milliseconds until it ends. */
export function utcDay(now: number): { day: string; previous: string; endsInMs: number } {
	const number = Math.floor(now / DAY_MS);
	if (number !== lastDay.number) {
		const name = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);
		lastDay = { number, name: name(number), previous: name(number - 1) };
	}
	return { day: lastDay.name, previous: lastDay.previous, endsInMs: (number + 1) * DAY_MS - now };
}

/** The last month's name, kept with the day it was asked for (a month changes only with a day). */
let lastMonth = { day: Number.NaN, name: "", previous: "", endsAt: 0 };

/** The UTC calendar month of `now` as `YYYY-MM`, the one before it, and the milliseconds until it ends. */
export function utcMonth(now: number): { month: string; previous: string; endsInMs: number } {
	const day = Math.floor(now / DAY_MS);
	if (day !== lastMonth.day) {
		const date = new Date(now);
		const number = date.getUTCFullYear() * 12 + date.getUTCMonth();
		const name = (n: number) => `${Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, "0")}`;
		lastMonth = { day, name: name(number), previous: name(number - 1), endsAt: Date.UTC(Math.floor((number + 1) / 12), (number + 1) % 12, 1) };
	}
	return { month: lastMonth.name, previous: lastMonth.previous, endsInMs: lastMonth.endsAt - now };
}
