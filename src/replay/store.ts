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
