import type { StoreFailureReason, StoreName } from "../events.ts";
import type { LimitName, LimitPolicy, LimitState } from "../limits/policy.ts";

/** What a store says about one claim: the key was free and is now ours, or it was taken. */
export type ClaimOutcome = "claimed" | "duplicate";

export class ReplayStoreError extends Error {
	override readonly name = "ReplayStoreError";
	readonly reason: StoreFailureReason;

	constructor(reason: StoreFailureReason, message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.reason = reason;
	}
}

/** One claim as a store keeps it: its key, its value (naming the claim) and the time it has left. */
export interface StoredClaim {
	key: string;
	value: string;
	ttlMs: number;
}

export interface ReplayStore {
	readonly name: StoreName;
	/**
	 * Claims `key` for `ttlMs` milliseconds, or reports that it is already claimed.
	 * Throws `ReplayStoreError` when the store cannot tell.
	 */
	claim(key: string, value: string, ttlMs: number, owner?: string): Promise<ClaimOutcome>;
	/**
	 * Claims `key` if it is free and otherwise reads it (`SET NX GET`): `null` when it was
	 * written, else the value already there, so a claim can tell its own earlier write from
	 * another's. Confirms a claim whose answer timed out, and writes back memory claims.
	 * Throws `ReplayStoreError` when the store cannot tell.
	 */
	claimOrRead?(claim: StoredClaim): Promise<string | null>;
}

// Claims under a client's limits (docs/design.md, "Per-client limits"): the replay claim and the limits in one step.

/** A slot this request holds until its answer ends (only under a `concurrent` limit). */
export interface HeldSlot {
	clientId: string;
	id: string;
	/** Where it is held, so it is released there. */
	store: StoreName;
}

/**
 * Tokens this request holds of its client's budget until the origin reports what it spent
 * (docs/design.md, "Token budgets"): the origin gets `hold` as `X-Token-Hold` and `id` as
 * `X-Token-Reservation`.
 */
export interface Reservation {
	/** `<client id>:<day or ->:<month or ->:<nonce>`: the windows it holds in, so a report finds them. */
	id: string;
	hold: number;
	/** Where it is held, and settled by the origin's report: Upstash, or the memory of the isolate that made it. */
	store: StoreName;
}

/** What a settle of a reservation found: settled now (its hold, what was counted), settled before, its lease ended, or no such reservation. */
export type SettleResult =
	| { status: "settled"; hold: number; counted: number }
	| { status: "already_settled" | "expired" | "unknown" };

/** One request's replay claim and limit check together, and why it was decided so. */
export type LimitedClaim =
	/** `expiredTokens`: holds of this client whose lease ended, charged whole by this call's sweep. */
	| { outcome: "claimed"; state: LimitState; slot: HeldSlot | null; reservation?: Reservation; expiredTokens?: number }
	/**
	 * The replay key was already claimed: no quota spent. `found` is the value there, when the
	 * store tells (so a claim whose first answer was lost can recognise its own).
	 */
	| { outcome: "duplicate"; found?: string }
	/**
	 * A limit was reached: nothing spent, and the replay key claimed all the same, so the same
	 * bytes are never executed later (the client signs anew after `retryAfterMs`).
	 */
	| { outcome: "limited"; limit: LimitName; retryAfterMs: number; state: LimitState; expiredTokens?: number };

/** What a claim under limits was granted: what is left, the slot it holds (or null), the tokens it holds. */
export interface LimitGrant {
	state: LimitState;
	slot: HeldSlot | null;
	reservation?: Reservation;
	expiredTokens?: number;
}

/** A limited claim's refusal: which limit, when to come back, what is left. */
export type LimitRefusal = Extract<LimitedClaim, { outcome: "limited" }>;

export interface LimitedClaimRequest {
	/** The replay key (prefix included), its value and its expiry, as for a plain claim. */
	key: string;
	value: string;
	ttlMs: number;
	clientId: string;
	policy: LimitPolicy;
	/**
	 * With a token budget: the hold asked for (`token_hold`, or the client's smaller
	 * `X-Token-Limit`), and the reservation's nonce (kept, so a confirming run names the same one).
	 */
	budget?: { hold: number; nonce: string };
	/**
	 * When the claim was first sent (epoch ms; default the store's clock): a confirming run, and
	 * the undo of a run whose answer was lost, name the same day, windows and reservation.
	 */
	at?: number;
}

/**
 * What a limited claim whose answer was lost may have taken in Upstash (its run may have
 * landed): its `concurrent` slot and its token reservation, null where it asked for none.
 * The request never reached the origin as that claim, so both are given back once Upstash answers.
 */
export interface LostClaim {
	slot: HeldSlot | null;
	reservation: string | null;
}

/** Quota a memory claim spent: one unit of `rpm` and/or `rpd` at `at` (epoch ms). */
export interface Spend {
	at: number;
	rpm: boolean;
	rpd: boolean;
}

/** A memory claim written back with the quota it spent in memory (docs/design.md, "Per-client limits"). */
export interface SpentClaim extends StoredClaim {
	clientId: string;
	spend: Spend;
}

/**
 * A store that claims a replay key and spends a client's quota in one step: Upstash (one
 * Lua script) or this isolate's memory. Throws `ReplayStoreError` when it cannot tell.
 */
export interface LimitedClaimStore {
	readonly name: StoreName;
	/**
	 * `confirming`: the second run of a claim whose first timed out (Upstash only): its own
	 * value found there is the claim, its own refusal the refusal.
	 */
	claim(request: LimitedClaimRequest, confirming?: boolean): Promise<LimitedClaim>;
	/** Frees a slot when its answer ended. Throws `ReplayStoreError` on failure (kept, and written back later). */
	release(slot: HeldSlot): Promise<void>;
	/**
	 * Writes a memory claim back with the quota it spent in memory (Upstash only): `null` when
	 * the key was free, else the value found there. Throws `ReplayStoreError` when it cannot tell.
	 */
	writeBack?(claim: SpentClaim): Promise<string | null>;
	/**
	 * Settles a reservation from the origin's report of `tokens` spent (the first report wins):
	 * in Upstash, or in memory those this isolate made. Throws `ReplayStoreError` when it cannot tell.
	 */
	settle?(reservation: string, tokens: number): Promise<SettleResult>;
}
