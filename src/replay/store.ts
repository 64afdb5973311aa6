import type { StoreFailureReason, StoreName } from "../events.ts";

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

export interface ReplayStore {
	readonly name: StoreName;
	/**
	 * Claims `key` for `ttlMs` milliseconds, or reports that it is already claimed.
	 * Throws `ReplayStoreError` when the store cannot tell.
	 */
	claim(key: string, value: string, ttlMs: number, owner?: string): Promise<ClaimOutcome>;
	/**
	 * Writes claims made elsewhere (in memory during an outage) with `SET NX`, each with its
	 * remaining expiry. For each: `null` when it was written, else the value already there.
	 * Throws `ReplayStoreError` when the store cannot tell.
	 */
	writeBack?(claim: WriteBack): Promise<string | null>;
}

/** One claim to write back: its key, its value (naming the claim) and the time it has left. */
export interface WriteBack {
	key: string;
	value: string;
	ttlMs: number;
}
