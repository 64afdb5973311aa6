// The replay guard's options and its verdict (src/claim/guard.ts): types only.
import type { FallbackReason, ReplayEvents, StoreFailureReason, StoreName } from "../events.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import type { Logger } from "../log.ts";
import type { CircuitBreaker } from "./breaker.ts";
import type { MemoryReplayStore } from "./memory.ts";
import type { LimitedClaimStore, LimitGrant, LimitRefusal, ReplayStore } from "./store.ts";

/**
 * The guard's verdict on one signed request, with the reason when it is not a claim.
 * A memory claim with a `fallback` reason was made because Upstash could not answer.
 * A replay found in this isolate's own records (no store asked) says `cached: true`.
 * `unavailable` names the store that could not tell: Upstash (failing closed) or memory (full).
 * Under a client's limits, a claim carries what is left (`limits`), and a refusal says why.
 */
export type ReplayDecision =
	| { status: "claimed"; store: StoreName; fallback: FallbackReason | null; limits?: LimitGrant }
	| { status: "replay"; store: StoreName; cached?: true }
	/** A limit was reached (docs/design.md, "Per-client limits"): nothing spent, the key claimed all the same. */
	| { status: "limited"; store: StoreName; refusal: LimitRefusal }
	/** `budget`: the client has a token budget, refused while Upstash fails (docs/design.md, "Token budgets"). */
	| { status: "unavailable"; store: StoreName; reason: StoreFailureReason | "breaker_open"; budget?: true };

export interface ReplayGuardOptions {
	/** Upstash, or null when it is not configured or `disabled`. */
	primary: ReplayStore | null;
	/** Whether claiming in memory alone is normal (development); elsewhere it is a degraded state. */
	memoryOnlyIsNormal: boolean;
	memory: MemoryReplayStore;
	breaker: CircuitBreaker;
	failMode: "memory" | "closed";
	/** `BUDGET_FAIL_MODE`: while Upstash fails, budgets are refused (`closed`) or kept per isolate (`memory`). @default "closed" */
	budgetFailMode?: "memory" | "closed";
	prefix: string;
	ttlSeconds: number;
	maxSkewMs: number;
	events: ReplayEvents;
	log: Logger;
	now?: () => number;
	/** Names this isolate in the claims it writes. @default a random UUID */
	isolateId?: string;
	/** Where claims under a limit policy go (docs/design.md, "Per-client limits"); without it, every claim is plain. */
	limits?: { primary: LimitedClaimStore | null; memory: LimitedClaimStore };
	/**
	 * Bound of the keys this isolate remembers Upstash holding (it may forget them: Upstash
	 * holds the truth). Half the memory store's by default, so that both, full, and the
	 * write-backs fit in 32 MiB with maximum-length keys (docs/reliability.md).
	 * @default half the memory store's bound
	 */
	decisionsMaxKeys?: number;
}

/** One claim on its way: its key, who made it, and how long it must live. */
export interface Claim {
	key: string;
	clientId: string;
	timestamp: string;
	counter: number;
	ttlMs: number;
	policy: LimitPolicy | null;
	tokenHold: number | null;
}
