import type { ReplayEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";
import type { MemoryReplayStore } from "./memory.ts";
import { packClaim, unpackClaim } from "./pending-claim.ts";
import { ReplayStoreError, type HeldSlot, type LimitedClaimStore, type LostClaim, type ReplayStore, type Spend } from "./store.ts";

/**
 * Claims written back per run: each is one subrequest of the request that runs it, so with
 * the request's own (Upstash, origin) it stays under 50 per invocation.
 */
const WRITE_BACKS_PER_RUN = 32;
const WRITE_BACK_PARALLEL = 4;
/** After a failed write-back, the next run waits this long. */
const WRITE_BACK_RETRY_MS = 1_000;
const LOG_INTERVAL_MS = 10_000;
/**
 * Releases (and reservations to give back) kept at most: each is a slot of a request that was
 * in flight in this isolate when Upstash failed, or of a claim whose answer was lost, so far
 * fewer in practice. Beyond it the oldest goes (its lease frees it).
 */
const MAX_RELEASES = 10_000;

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
 * A claim that spent quota in memory (under a limit policy) is written back with its spend.
 *
 * And the releases of `concurrent` slots held in Upstash that failed (docs/design.md,
 * "Per-client limits"): a slot never outlives its request, so each is sent again (`ZREM`) with
 * the claims, before them. A limited claim whose answer was lost (its run may have landed, and
 * the request went on in memory or was refused) gives back the same way what it may have taken:
 * its slot, and its token reservation, settled as spending nothing (a reservation that never
 * landed is unknown there, and nothing changes).
 */
export class WriteBacks {
	/** Digest to the packed claim, oldest first. */
	readonly pending = new Map<string, string>();
	/** Slots whose release failed, oldest first, by client id and slot id. */
	readonly releases = new Map<string, HeldSlot>();
	/** Reservations of lost claims, to be settled at 0 tokens, oldest first. */
	readonly cancels = new Set<string>();
	private readonly options: WriteBacksOptions;
	private readonly throttle: LogThrottle;
	private running = false;
	private retryAt = Number.NEGATIVE_INFINITY;

	constructor(options: WriteBacksOptions) {
		this.options = options;
		this.throttle = new LogThrottle(LOG_INTERVAL_MS, options.now);
	}

	/** How many wait: claims and releases (the guard's `pendingReconciliation`). */
	get size(): number {
		return this.pending.size + this.releases.size + this.cancels.size;
	}

	/** Queues the memory claim under digest `id` (claim number `counter` of this isolate), with the quota it spent in memory. */
	add(id: string, claim: { key: string; clientId: string; timestamp: string; counter: number }, spend?: Spend): void {
		for (const oldest of this.pending.keys()) {
			if (this.options.memory.expiresAt(oldest) !== undefined) break;
			this.pending.delete(oldest);
		}
		const { key, clientId, timestamp, counter } = claim;
		const pending = { replayId: key.slice(this.options.prefix.length), clientId, timestamp, counter };
		this.pending.set(id, packClaim(spend === undefined ? pending : { ...pending, spend }));
	}

	/**
	 * Frees a `concurrent` slot where it is held, when its answer ended. A release Upstash did
	 * not take is kept and sent again with the write-backs once it answers (docs/design.md,
	 * "Per-client limits"): a slot never outlives its request.
	 */
	async release(store: Pick<LimitedClaimStore, "release" | "name">, slot: HeldSlot): Promise<void> {
		try {
			await store.release(slot);
		} catch (error) {
			if (store.name !== "upstash") return;
			this.addRelease(slot);
			const suppressed = this.throttle.admit("release");
			if (suppressed !== null) {
				this.options.log.warn("a concurrent slot was not released: kept, and released when Upstash answers again", {
					error: error instanceof ReplayStoreError ? error.reason : "error",
					suppressed,
				});
			}
		}
	}

	/** Keeps a slot whose release failed, to release it once Upstash answers again. */
	addRelease(slot: HeldSlot): void {
		if (this.releases.size >= MAX_RELEASES) this.releases.delete(this.releases.keys().next().value!);
		this.releases.set(`${slot.clientId}\n${slot.id}`, slot);
	}

	/** Keeps what a limited claim whose answer was lost may hold in Upstash, to give it back once Upstash answers again. */
	addLost(lost: LostClaim): void {
		if (lost.slot !== null) this.addRelease(lost.slot);
		if (lost.reservation === null) return;
		if (this.cancels.size >= MAX_RELEASES) this.cancels.delete(this.cancels.values().next().value!);
		this.cancels.add(lost.reservation);
	}

	/** Upstash holds `id` now (a copy's `SET` answered OK): nothing to write. */
	settled(id: string): void {
		this.pending.delete(id);
	}

	/**
	 * Sends up to 32 releases, reservations to give back and claims to Upstash, 4 at a time,
	 * releases first (each frees a client's slot), then the reservations (each settled at 0): a
	 * claim to `store` (`SET NX GET`), or, with the quota it spent, to `limits` (one script). Resolves at once when a run is under way (its I/O belongs to the
	 * request that started it, so a second caller does not wait on it) or a failed run asked
	 * for a pause.
	 */
	async run(store: ReplayStore, limits?: Pick<LimitedClaimStore, "release" | "writeBack" | "settle">): Promise<void> {
		if (store.claimOrRead === undefined || this.size === 0 || this.running) return;
		if (this.options.now() < this.retryAt) return;
		this.running = true;
		try {
			const batch: (() => Promise<void>)[] = [];
			for (const [name, slot] of this.releases) {
				if (limits === undefined || batch.length === WRITE_BACKS_PER_RUN) break;
				batch.push(() => this.sendRelease(limits, name, slot));
			}
			for (const reservation of this.cancels) {
				if (limits?.settle === undefined || batch.length === WRITE_BACKS_PER_RUN) break;
				batch.push(() => this.sendCancel(limits, reservation));
			}
			for (const [id, claim] of this.pending) {
				if (batch.length === WRITE_BACKS_PER_RUN) break;
				if (this.options.memory.expiresAt(id) === undefined) this.pending.delete(id);
				else batch.push(() => this.write(store, limits, id, claim));
			}
			for (let i = 0; i < batch.length; i += WRITE_BACK_PARALLEL) {
				const results = await Promise.allSettled(batch.slice(i, i + WRITE_BACK_PARALLEL).map((send) => send()));
				if (results.some((result) => result.status === "rejected")) {
					this.retryAt = this.options.now() + WRITE_BACK_RETRY_MS;
					return;
				}
			}
		} finally {
			this.running = false;
		}
	}

	private async sendRelease(limits: Pick<LimitedClaimStore, "release">, name: string, slot: HeldSlot): Promise<void> {
		await limits.release(slot);
		if (this.releases.get(name) === slot) this.releases.delete(name);
	}

	/** Settles a lost claim's reservation at 0 tokens: its hold comes back, if it was ever made. */
	private async sendCancel(limits: Pick<LimitedClaimStore, "settle">, reservation: string): Promise<void> {
		await limits.settle?.(reservation, 0);
		this.cancels.delete(reservation);
	}

	private async write(store: ReplayStore, limits: Pick<LimitedClaimStore, "writeBack"> | undefined, id: string, packed: string): Promise<void> {
		// Settled meanwhile: a copy's Upstash OK holds the key.
		if (this.pending.get(id) !== packed) return;
		const expiresAt = this.options.memory.expiresAt(id);
		if (expiresAt === undefined) {
			this.pending.delete(id);
			return;
		}
		const ttlMs = expiresAt - this.options.now();
		const { replayId, clientId, timestamp, counter, spend } = unpackClaim(packed);
		const value = this.options.valueOf({ clientId, timestamp, counter });
		const claim = { key: this.options.prefix + replayId, value, ttlMs };
		// With the quota it spent in memory, where the limits can take it; else the key alone.
		const found = spend !== undefined && limits?.writeBack !== undefined ? await limits.writeBack({ ...claim, clientId, spend }) : await store.claimOrRead!(claim);
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

