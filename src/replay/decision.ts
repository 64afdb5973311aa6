import type { FallbackReason, StoreFailureReason, StoreName } from "../events.ts";
import type { LimitGrant, LimitRefusal } from "../limits/store.ts";

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
	/** A limit was reached (docs/design.md, "Per-client limits"): nothing claimed, nothing spent. */
	| { status: "limited"; store: StoreName; refusal: LimitRefusal }
	| { status: "unavailable"; store: StoreName; reason: StoreFailureReason | "breaker_open" };
