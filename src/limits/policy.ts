/**
 * Per-client limits (docs/design.md, "Per-client limits"): what one client may spend, and
 * which clients the operator named as metric labels.
 */

import type { Limit } from "../events.ts";

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

/** The last day's name, so a request does not format a date (one per isolate per day). */
let lastDay = { number: Number.NaN, name: "" };

/** The UTC day of `now` as `YYYY-MM-DD`, and the milliseconds until it ends. */
export function utcDay(now: number): { day: string; endsInMs: number } {
	const number = Math.floor(now / DAY_MS);
	if (number !== lastDay.number) lastDay = { number, name: new Date(number * DAY_MS).toISOString().slice(0, 10) };
	return { day: lastDay.name, endsInMs: (number + 1) * DAY_MS - now };
}
