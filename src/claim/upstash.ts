import { Redis } from "@upstash/redis/cloudflare";
import type { LimitRedis } from "./redis-limits.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore, type StoredClaim } from "./store.ts";

/**
 * The one command the replay store needs: `SET key value NX PX ttl` (with `GET` to confirm a
 * claim or write one back), so a fake in a test is a few lines.
 */
export interface ReplayRedis {
	set(key: string, value: string, options: { nx: true; px: number; get?: true }): Promise<unknown>;
}

/** The SDK's commands the gateway sends. */
type UpstashCommands = Pick<Redis, "set" | "evalsha" | "eval" | "zrem">;

export interface UpstashClientOptions {
	url: string;
	token: string;
	/** Budget of one claim, in milliseconds (`REPLAY_TIMEOUT_MS`). */
	timeoutMs: number;
	/** Builds the SDK client with one time budget (a test passes a fake). @default the SDK's `Redis` with the settings below */
	build?: (timeoutMs: number) => UpstashCommands;
}

/**
 * Budget of a `SET NX GET` (a confirmation after a timed-out claim, or a write-back): it
 * runs only after a claim ran out of time, so it gets at least a second, and never less than
 * a claim's budget.
 */
export function confirmTimeoutMs(timeoutMs: number): number {
	return Math.max(1_000, timeoutMs);
}

/**
 * An `@upstash/redis` client set up for replay claims (docs/design.md, "Replay protection"):
 * - `retry: { retries: 0 }`: a retried SET whose first answer was lost would read as a replay;
 * - `signal` as a function, so every call gets a fresh deadline and an abort throws
 *   (a plain AbortSignal makes the SDK return the abort as a result);
 * - no auto-pipelining, which would share one batch's I/O between requests;
 * - no deserialization: the result is compared to `"OK"` exactly.
 * A claim gets `timeoutMs`; a `SET ... GET` the longer `confirmTimeoutMs` (the SDK takes one
 * deadline per client, so there are two).
 */
export function createUpstashClient(options: UpstashClientOptions): ReplayRedis & LimitRedis {
	const build =
		options.build ??
		((timeoutMs: number) =>
			new Redis({
				url: options.url,
				token: options.token,
				retry: { retries: 0 },
				signal: () => AbortSignal.timeout(timeoutMs),
				enableAutoPipelining: false,
				automaticDeserialization: false,
				enableTelemetry: false,
				readYourWrites: false,
			}));
	const claims = build(options.timeoutMs);
	const reads = build(confirmTimeoutMs(options.timeoutMs));
	return {
		set: (key, value, setOptions) => (setOptions.get === true ? reads : claims).set(key, value, setOptions),
		// The limits script (src/claim/redis-limits.ts) has a claim's budget, its confirming run a confirmation's; a slot's release a claim's.
		evalsha: (sha1, keys, args, patience) => (patience === "confirm" ? reads : claims).evalsha(sha1, keys, args),
		eval: (script, keys, args, patience) => (patience === "confirm" ? reads : claims).eval(script, keys, args),
		zrem: (key, member) => claims.zrem(key, member),
	};
}

/** Claims replay keys with one `SET key value NX PX ttl` each. */
export class UpstashReplayStore implements ReplayStore {
	readonly name = "upstash";

	private readonly redis: ReplayRedis;

	constructor(redis: ReplayRedis) {
		this.redis = redis;
	}

	async claim(key: string, value: string, ttlMs: number): Promise<ClaimOutcome> {
		const result = await send(() => this.redis.set(key, value, { nx: true, px: ttlMs }));
		if (result === "OK") return "claimed";
		if (result === null) return "duplicate";
		throw new ReplayStoreError("error", "Upstash answered SET NX with an unexpected result");
	}

	/**
	 * `SET key value NX PX ttl GET`: one command (the ACL user needs only SET) that writes the
	 * claim when the key is free, and otherwise returns the value there, so a claim's own
	 * late-landing SET can be told from another's claim.
	 */
	async claimOrRead(claim: StoredClaim): Promise<string | null> {
		const result = await send(() => this.redis.set(claim.key, claim.value, { nx: true, px: claim.ttlMs, get: true }));
		if (result === null || typeof result === "string") return result;
		throw new ReplayStoreError("error", "Upstash answered SET NX GET with an unexpected result");
	}
}

/** Runs one Upstash call; a failure becomes a `ReplayStoreError` that says whether it timed out. */
async function send(call: () => Promise<unknown>): Promise<unknown> {
	try {
		return await call();
	} catch (error) {
		const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
		if (timedOut) throw new ReplayStoreError("timeout", "Upstash did not answer in time", { cause: error });
		throw new ReplayStoreError("error", "Upstash call failed", { cause: error });
	}
}
