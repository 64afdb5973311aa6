import { Redis } from "@upstash/redis/cloudflare";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore, type WriteBack } from "./store.ts";

/**
 * The one command the replay store needs: `SET key value NX PX ttl` (with `GET` for a
 * write-back), so a fake in a test is a few lines.
 */
export interface ReplayRedis {
	set(key: string, value: string, options: { nx: true; px: number; get?: true }): Promise<unknown>;
}

export interface UpstashClientOptions {
	url: string;
	token: string;
	/** Budget of one call, in milliseconds (`REPLAY_TIMEOUT_MS`). */
	timeoutMs: number;
}

/**
 * An `@upstash/redis` client set up for replay claims (SPEC section 3):
 * - `retry: { retries: 0 }`: a retried SET whose first answer was lost would read as a replay;
 * - `signal` as a function, so every call gets a fresh deadline and an abort throws
 *   (a plain AbortSignal makes the SDK return the abort as a result);
 * - no auto-pipelining, which would share one batch's I/O between requests;
 * - no deserialization: the result is compared to `"OK"` exactly.
 */
export function createUpstashClient(options: UpstashClientOptions): ReplayRedis {
	return new Redis({
		url: options.url,
		token: options.token,
		retry: { retries: 0 },
		signal: () => AbortSignal.timeout(options.timeoutMs),
		enableAutoPipelining: false,
		automaticDeserialization: false,
		enableTelemetry: false,
		readYourWrites: false,
	});
}

/** Claims replay keys with one `SET key value NX PX ttl` each. */
export class UpstashReplayStore implements ReplayStore {
	readonly name = "upstash";

	private readonly redis: ReplayRedis;

	constructor(redis: ReplayRedis) {
		this.redis = redis;
	}

	async claim(key: string, value: string, ttlMs: number): Promise<ClaimOutcome> {
		let result: unknown;
		try {
			result = await this.redis.set(key, value, { nx: true, px: ttlMs });
		} catch (error) {
			if (isTimeout(error)) throw new ReplayStoreError("timeout", "Upstash did not answer in time", { cause: error });
			throw new ReplayStoreError("error", "Upstash call failed", { cause: error });
		}
		if (result === "OK") return "claimed";
		if (result === null) return "duplicate";
		throw new ReplayStoreError("error", "Upstash answered SET NX with an unexpected result");
	}

	/**
	 * `SET key value NX PX ttl GET`: one command (the ACL user needs only SET) that writes the
	 * claim when the key is free, and otherwise returns the value there, so a claim's own
	 * late-landing SET can be told from another's claim.
	 */
	async writeBack(claim: WriteBack): Promise<string | null> {
		let result: unknown;
		try {
			result = await this.redis.set(claim.key, claim.value, { nx: true, px: claim.ttlMs, get: true });
		} catch (error) {
			if (isTimeout(error)) throw new ReplayStoreError("timeout", "Upstash did not answer in time", { cause: error });
			throw new ReplayStoreError("error", "Upstash call failed", { cause: error });
		}
		if (result === null || typeof result === "string") return result;
		throw new ReplayStoreError("error", "Upstash answered SET NX GET with an unexpected result");
	}
}

function isTimeout(error: unknown): boolean {
	return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}
