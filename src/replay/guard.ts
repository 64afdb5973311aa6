import type { FallbackReason, ReplayEvents, StoreFailureReason, StoreName } from "../events.ts";
import type { Logger } from "../log.ts";
import { LogThrottle } from "../log.ts";
import type { BreakerState, CircuitBreaker } from "./breaker.ts";
import type { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type ReplayStore } from "./store.ts";

/** The guard's verdict on one signed request, with the reason when it is not a claim. */
export type ReplayDecision =
	| { status: "claimed"; store: StoreName; fallback: FallbackReason | null }
	| { status: "replay"; store: StoreName }
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
}

const LOG_INTERVAL_MS = 10_000;

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

	constructor(options: ReplayGuardOptions) {
		this.options = options;
		this.now = options.now ?? Date.now;
		this.throttle = new LogThrottle(LOG_INTERVAL_MS, this.now);
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
		const value = `${clientId}:${timestamp}`;
		const ttlMs = this.ttlMs(Number(timestamp), now);
		const { primary, breaker, events } = this.options;

		let fallback: FallbackReason | null = null;
		if (primary !== null) {
			if (breaker.tryAcquire()) {
				const started = performance.now();
				try {
					const outcome = await primary.claim(key, value, ttlMs);
					events.storeCall(primary.name, outcome, (performance.now() - started) / 1000);
					breaker.recordSuccess();
					this.logConnected();
					if (outcome === "duplicate") return this.replay(primary.name, clientId, timestamp);
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

	private async claimInMemory(
		key: string,
		value: string,
		ttlMs: number,
		clientId: string,
		timestamp: string,
		fallback: FallbackReason | null,
	): Promise<ReplayDecision> {
		const { memory, events } = this.options;
		const started = performance.now();
		try {
			const outcome = await memory.claim(key, value, ttlMs);
			events.storeCall("memory", outcome, (performance.now() - started) / 1000);
			if (outcome === "duplicate") return this.replay("memory", clientId, timestamp);
			return { status: "claimed", store: "memory", fallback };
		} catch (error) {
			const reason = error instanceof ReplayStoreError ? error.reason : "error";
			events.storeCall("memory", reason, (performance.now() - started) / 1000);
			this.options.log.error("memory replay store refused a claim", { reason });
			return { status: "unavailable", reason };
		}
	}

	private replay(store: StoreName, clientId: string, timestamp: string): ReplayDecision {
		this.options.events.replayAttempt();
		const suppressed = this.throttle.admit("replay");
		if (suppressed !== null) {
			this.options.log.warn("replay attempt detected", { client_id: clientId, timestamp, store, suppressed });
		}
		return { status: "replay", store };
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
