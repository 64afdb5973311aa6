import type { FallbackReason, ReplayEvents, StoreFailureReason, StoreName } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import type { BreakerState, CircuitBreaker } from "./breaker.ts";
import type { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type ReplayStore } from "./store.ts";

/**
 * The guard's verdict on one signed request, with the reason when it is not a claim.
 * A replay found in this isolate's own decisions (no store asked) says `cached: true`.
 */
export type ReplayDecision =
	| { status: "claimed"; store: StoreName; fallback: FallbackReason | null }
	| { status: "replay"; store: StoreName; cached?: true }
	| { status: "unavailable"; reason: StoreFailureReason | "breaker_open" };

export interface ReplayGuardOptions {
	/** Upstash, or null when it is not configured or `disabled`. */
	primary: ReplayStore | null;
	/** Whether claiming in memory alone is normal (development); elsewhere it is a degraded state. */
	memoryOnlyIsNormal: boolean;
	memory: MemoryReplayStore;
	breaker: CircuitBreaker;
	failMode: "memory" | "closed";
	prefix: string;
	ttlSeconds: number;
	maxSkewMs: number;
	events: ReplayEvents;
	log: Logger;
	now?: () => number;
	/** Names this isolate in the claims it writes. @default a random UUID */
	isolateId?: string;
	/** Bound of this isolate's decisions cache (it may evict: Upstash holds the truth). @default the memory store's bound */
	decisionsMaxKeys?: number;
}

const LOG_INTERVAL_MS = 10_000;
/**
 * Claims written back per `reconcile()` call: each is one subrequest of the request that runs
 * it, so with the request's own two (Upstash, origin) it stays under 50 per invocation.
 */
const WRITE_BACKS_PER_RUN = 32;
const WRITE_BACK_PARALLEL = 4;
/** After a failed write-back, the next run waits this long. */
const WRITE_BACK_RETRY_MS = 1_000;

/**
 * Every decision this isolate made (an Upstash `OK`, a memory claim) or saw (an Upstash
 * duplicate), until its key expires. Bounded; evicts the oldest, since Upstash holds the truth
 * and the memory store keeps its own claims.
 */
class DecisionCache {
	private readonly entries = new Map<string, { expiresAt: number; store: StoreName }>();
	private readonly maxKeys: number;

	constructor(maxKeys: number) {
		if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new Error("ReplayGuard: decisionsMaxKeys must be a positive integer");
		this.maxKeys = maxKeys;
	}

	get size(): number {
		return this.entries.size;
	}

	/** The store of a live decision for `key`, or null. */
	find(key: string, now: number): StoreName | null {
		const entry = this.entries.get(key);
		if (entry === undefined) return null;
		if (entry.expiresAt > now) return entry.store;
		this.entries.delete(key);
		return null;
	}

	/** Records a decision; false when a live one was already there (this one is then a replay). */
	record(key: string, store: StoreName, expiresAt: number, now: number): boolean {
		if (this.find(key, now) !== null) return false;
		if (this.entries.size >= this.maxKeys) {
			const oldest = this.entries.keys().next();
			if (oldest.done !== true) this.entries.delete(oldest.value);
		}
		this.entries.set(key, { expiresAt, store });
		return true;
	}
}

interface PendingClaim {
	value: string;
	expiresAt: number;
	clientId: string;
	timestamp: string;
}

/**
 * Claims each verified signature once (SPEC section 3): in Upstash when configured,
 * else, or when Upstash fails and the fail mode is `memory`, in this isolate's memory.
 */
export class ReplayGuard {
	private readonly now: () => number;
	private readonly throttle: LogThrottle;
	/** Whether "connected" was logged since the last failure, so a recovery is logged too. */
	private connected = false;
	/** The last time Upstash failed or was skipped, for `/healthz`. */
	private lastDegradedAt = Number.NEGATIVE_INFINITY;

	private readonly options: ReplayGuardOptions;
	private readonly isolateId: string;
	/** Numbers the claims of this isolate, so each stored value names one claim. */
	private counter = 0;
	private readonly decisions: DecisionCache;
	/** Claims made in memory while Upstash failed, to be written to it once it answers. */
	private readonly pending = new Map<string, PendingClaim>();
	private reconciling = false;
	private writeBackRetryAt = Number.NEGATIVE_INFINITY;

	constructor(options: ReplayGuardOptions) {
		this.options = options;
		this.now = options.now ?? Date.now;
		this.throttle = new LogThrottle(LOG_INTERVAL_MS, this.now);
		this.isolateId = options.isolateId ?? crypto.randomUUID();
		this.decisions = new DecisionCache(options.decisionsMaxKeys ?? options.memory.maxKeys);
	}

	/** Claims made in memory during an outage and not yet written to Upstash. */
	get pendingReconciliation(): number {
		return this.pending.size;
	}

	/** The store claims go to while all is well. */
	get storeName(): StoreName {
		return this.options.primary?.name ?? "memory";
	}

	get breakerState(): BreakerState {
		return this.options.breaker.state;
	}

	/**
	 * True while claims are not in a shared store: Upstash failed or was skipped in the last
	 * 10 s, or the breaker is not closed; or there is no Upstash outside development.
	 */
	get degraded(): boolean {
		if (this.options.primary === null) return !this.options.memoryOnlyIsNormal;
		if (this.options.breaker.state !== "closed") return true;
		return this.now() - this.lastDegradedAt < LOG_INTERVAL_MS;
	}

	/**
	 * The key must outlive the window in which the same timestamp still passes the skew
	 * check, and never live less than the configured TTL.
	 */
	ttlMs(timestampMs: number, nowMs: number): number {
		return Math.max(timestampMs + this.options.maxSkewMs - nowMs, this.options.ttlSeconds * 1000);
	}

	async claim(signatureHex: string, clientId: string, timestamp: string, context: { colo?: string } = {}): Promise<ReplayDecision> {
		const now = this.now();
		const key = this.options.prefix + signatureHex;
		// Client id and timestamp for forensics, then the claim's own id (isolate and counter).
		const value = `${clientId}:${timestamp}:${this.isolateId}:${++this.counter}`;
		const ttlMs = this.ttlMs(Number(timestamp), now);
		const expiresAt = now + ttlMs;
		const { primary, breaker, events } = this.options;

		let fallback: FallbackReason | null = null;
		if (primary !== null) {
			// A key this isolate already decided on is a replay, without a call, even during an outage.
			const decided = this.decisions.find(key, now);
			if (decided !== null) return this.replay(decided, clientId, timestamp, true);
			if (breaker.tryAcquire()) {
				const started = performance.now();
				try {
					const outcome = await primary.claim(key, value, ttlMs, clientId);
					events.storeCall(primary.name, outcome, (performance.now() - started) / 1000);
					breaker.recordSuccess();
					this.logConnected();
					const recorded = this.decisions.record(key, primary.name, expiresAt, this.now());
					if (outcome === "duplicate") return this.replay(primary.name, clientId, timestamp);
					if (!recorded) {
						// A copy of this request fell back to memory while this SET was on its way and was
						// accepted: this one is the replay. Upstash now holds the key, so nothing to write back.
						this.pending.delete(key);
						return this.replay(primary.name, clientId, timestamp);
					}
					return { status: "claimed", store: primary.name, fallback: null };
				} catch (error) {
					const reason = error instanceof ReplayStoreError ? error.reason : "error";
					events.storeCall(primary.name, reason, (performance.now() - started) / 1000);
					breaker.recordFailure();
					if (breaker.state === "open") events.breakerOpened();
					this.connected = false;
					fallback = reason === "timeout" ? "timeout" : "error";
				}
			} else {
				fallback = "breaker_open";
			}
			this.lastDegradedAt = now;
			if (this.options.failMode === "closed") {
				this.warn("replay store unavailable, failing closed", fallback, context.colo);
				return { status: "unavailable", reason: fallback };
			}
			events.fallback(fallback);
			this.warn("replay store unavailable, falling back to memory", fallback, context.colo);
		}

		return this.claimInMemory(key, value, ttlMs, clientId, timestamp, fallback);
	}

	/**
	 * Writes the claims made in memory during an outage to Upstash (`SET NX`, the same
	 * expiry), at most a few per call, once Upstash answers again. Run it in the background
	 * after a request: `ctx.waitUntil(replay.reconcile())`. Resolves at once when there is
	 * nothing to do, Upstash has not answered since its last failure, or a run is under way
	 * (a run's I/O belongs to the request that started it, so a second caller does not wait on it).
	 */
	async reconcile(): Promise<void> {
		const { primary } = this.options;
		if (primary === null || primary.writeBack === undefined || this.pending.size === 0) return;
		if (this.reconciling || !this.connected || this.options.breaker.state !== "closed") return;
		if (this.now() < this.writeBackRetryAt) return;
		this.reconciling = true;
		try {
			const now = this.now();
			const batch: [string, PendingClaim][] = [];
			for (const [key, claim] of this.pending) {
				if (claim.expiresAt <= now) this.pending.delete(key);
				else batch.push([key, claim]);
				if (batch.length === WRITE_BACKS_PER_RUN) break;
			}
			for (let i = 0; i < batch.length; i += WRITE_BACK_PARALLEL) {
				const results = await Promise.allSettled(
					batch.slice(i, i + WRITE_BACK_PARALLEL).map(([key, claim]) => this.writeBack(primary, key, claim)),
				);
				if (results.some((result) => result.status === "rejected")) {
					this.writeBackRetryAt = this.now() + WRITE_BACK_RETRY_MS;
					return;
				}
			}
		} finally {
			this.reconciling = false;
		}
	}

	private async writeBack(primary: ReplayStore, key: string, claim: PendingClaim): Promise<void> {
		// Settled meanwhile: an Upstash OK for the same key wrote it.
		if (this.pending.get(key) !== claim) return;
		const ttlMs = claim.expiresAt - this.now();
		if (ttlMs <= 0) {
			this.pending.delete(key);
			return;
		}
		const found = await primary.writeBack!({ key, value: claim.value, ttlMs });
		if (this.pending.get(key) === claim) this.pending.delete(key);
		// Written, or this claim's own SET that timed out but landed: nothing got through.
		if (found === null || found === claim.value) return;
		this.options.events.outageReplay();
		const suppressed = this.throttle.admit("outage_replay");
		if (suppressed !== null) {
			this.options.log.warn("replay accepted during the Upstash outage: the key was already claimed", {
				client_id: claim.clientId,
				timestamp: claim.timestamp,
				suppressed,
			});
		}
	}

	private async claimInMemory(
		key: string,
		value: string,
		ttlMs: number,
		clientId: string,
		timestamp: string,
		fallback: FallbackReason | null,
	): Promise<ReplayDecision> {
		const { memory, events, primary } = this.options;
		const started = performance.now();
		if (primary !== null) {
			// Checked again: a copy's Upstash answer may have landed while this one's call failed.
			const decided = this.decisions.find(key, this.now());
			if (decided !== null) return this.replay(decided, clientId, timestamp, true);
		}
		try {
			const outcome = await memory.claim(key, value, ttlMs, clientId);
			events.storeCall("memory", outcome, (performance.now() - started) / 1000);
			if (outcome === "duplicate") return this.replay("memory", clientId, timestamp);
			if (primary !== null) {
				const now = this.now();
				if (!this.decisions.record(key, "memory", now + ttlMs, now)) return this.replay("memory", clientId, timestamp);
				this.pending.set(key, { value, expiresAt: now + ttlMs, clientId, timestamp });
			}
			return { status: "claimed", store: "memory", fallback };
		} catch (error) {
			const reason = error instanceof ReplayStoreError ? error.reason : "error";
			events.storeCall("memory", reason, (performance.now() - started) / 1000);
			const suppressed = this.throttle.admit("refused");
			if (suppressed !== null) this.options.log.error("memory replay store refused a claim", { reason, suppressed });
			return { status: "unavailable", reason };
		}
	}

	private replay(store: StoreName, clientId: string, timestamp: string, cached = false): ReplayDecision {
		this.options.events.replayAttempt();
		const suppressed = this.throttle.admit("replay");
		if (suppressed !== null) {
			this.options.log.warn("replay attempt detected", { client_id: clientId, timestamp, store, suppressed });
		}
		return cached ? { status: "replay", store, cached: true } : { status: "replay", store };
	}

	private logConnected(): void {
		if (this.connected) return;
		this.connected = true;
		this.options.log.info("Redis replay cache connected", { store: "upstash" });
	}

	private warn(message: string, reason: FallbackReason, colo: string | undefined): void {
		const suppressed = this.throttle.admit("fallback");
		if (suppressed !== null) {
			this.options.log.warn(message, { reason, colo: colo ?? null, fail_mode: this.options.failMode, suppressed });
		}
	}
}
