import type { ReplayEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import type { MemoryReplayStore } from "./memory.ts";
import { packClaim, unpackClaim } from "./pending-claim.ts";
import type { ReplayStore } from "./store.ts";

/**
 * Claims written back per run: each is one subrequest of the request that runs it, so with
 * the request's own (Upstash, origin) it stays under 50 per invocation.
 */
const WRITE_BACKS_PER_RUN = 32;
const WRITE_BACK_PARALLEL = 4;
/** After a failed write-back, the next run waits this long. */
const WRITE_BACK_RETRY_MS = 1_000;
const LOG_INTERVAL_MS = 10_000;

export interface WriteBacksOptions {
	/** Where each waiting claim is, with its expiry. */
	memory: Pick<MemoryReplayStore, "expiresAt">;
	/** `REDIS_REPLAY_PREFIX`: every key starts with it. */
	prefix: string;
	/** The value a claim stored (the guard's `claimValue()`), rebuilt for its write-back. */
	valueOf: (claim: { clientId: string; timestamp: string; counter: number }) => string;
	events: Pick<ReplayEvents, "outageReplay">;
	log: Logger;
	now: () => number;
}

/**
 * The claims made in memory while Upstash failed, by digest, until Upstash holds them
 * (docs/design.md, "Replay protection"): each is written with `SET NX GET` and its own expiry
 * once Upstash answers again. One that finds another's claim there is counted and logged: a
 * replay that got through during the outage. Never evicted: each is a live memory claim, so
 * the memory store's bound is theirs too; expired ones are dropped. Each is one flat string
 * (`packClaim`), small since an outage can queue as many as the memory store holds; its
 * expiry is the memory store's (the claim is there, under the same digest, as long as it lives).
 */
export class WriteBacks {
	/** Digest to the packed claim, oldest first; its size is how many wait (the guard's `pendingReconciliation`). */
	readonly pending = new Map<string, string>();
	private readonly options: WriteBacksOptions;
	private readonly throttle: LogThrottle;
	private running = false;
	private retryAt = Number.NEGATIVE_INFINITY;

	constructor(options: WriteBacksOptions) {
		this.options = options;
		this.throttle = new LogThrottle(LOG_INTERVAL_MS, options.now);
	}

	/** Queues the memory claim under digest `id` (claim number `counter` of this isolate). */
	add(id: string, claim: { key: string; clientId: string; timestamp: string; counter: number }): void {
		for (const oldest of this.pending.keys()) {
			if (this.options.memory.expiresAt(oldest) !== undefined) break;
			this.pending.delete(oldest);
		}
		const { key, clientId, timestamp, counter } = claim;
		this.pending.set(id, packClaim({ replayId: key.slice(this.options.prefix.length), clientId, timestamp, counter }));
	}

	/** Upstash holds `id` now (a copy's `SET` answered OK): nothing to write. */
	settled(id: string): void {
		this.pending.delete(id);
	}

	/**
	 * Writes up to 32 claims to `store`, 4 at a time. Resolves at once when a run is under way
	 * (its I/O belongs to the request that started it, so a second caller does not wait on it)
	 * or a failed run asked for a pause.
	 */
	async run(store: ReplayStore): Promise<void> {
		if (store.claimOrRead === undefined || this.pending.size === 0 || this.running) return;
		if (this.options.now() < this.retryAt) return;
		this.running = true;
		try {
			const batch: [string, string][] = [];
			for (const [id, claim] of this.pending) {
				if (this.options.memory.expiresAt(id) === undefined) this.pending.delete(id);
				else batch.push([id, claim]);
				if (batch.length === WRITE_BACKS_PER_RUN) break;
			}
			for (let i = 0; i < batch.length; i += WRITE_BACK_PARALLEL) {
				const results = await Promise.allSettled(batch.slice(i, i + WRITE_BACK_PARALLEL).map(([id, claim]) => this.write(store, id, claim)));
				if (results.some((result) => result.status === "rejected")) {
					this.retryAt = this.options.now() + WRITE_BACK_RETRY_MS;
					return;
				}
			}
		} finally {
			this.running = false;
		}
	}

	private async write(store: ReplayStore, id: string, packed: string): Promise<void> {
		// Settled meanwhile: a copy's Upstash OK holds the key.
		if (this.pending.get(id) !== packed) return;
		const expiresAt = this.options.memory.expiresAt(id);
		if (expiresAt === undefined) {
			this.pending.delete(id);
			return;
		}
		const ttlMs = expiresAt - this.options.now();
		const { replayId, clientId, timestamp, counter } = unpackClaim(packed);
		const value = this.options.valueOf({ clientId, timestamp, counter });
		const found = await store.claimOrRead!({ key: this.options.prefix + replayId, value, ttlMs });
		if (this.pending.get(id) === packed) this.pending.delete(id);
		// Written, or this claim's own call that timed out but landed (a claim, or its refusal): nothing got through.
		if (found === null || found === value || found.startsWith(`${value}:refused:`)) return;
		this.options.events.outageReplay();
		const suppressed = this.throttle.admit("outage_replay");
		if (suppressed !== null) {
			this.options.log.warn("replay accepted during the Upstash outage: the key was already claimed", {
				client_id: clientId,
				timestamp,
				suppressed,
			});
		}
	}
}
