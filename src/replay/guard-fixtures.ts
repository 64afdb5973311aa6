// Fakes for the replay guard's tests: a scripted Upstash, recording events and logs.
import type { ReplayEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { CircuitBreaker } from "./breaker.ts";
import { ReplayGuard, type ReplayGuardOptions } from "./guard.ts";
import { MemoryReplayStore } from "./memory.ts";
import { ReplayStoreError, type ClaimOutcome, type ReplayStore, type StoredClaim } from "./store.ts";

export const silent: Logger = { info() {}, warn() {}, error() {} };
/** A realistic clock: epoch milliseconds (a clock at 0 hides bugs that compare with a 0 default). */
export const EPOCH = 1_764_000_000_000;
export const ts = String(EPOCH);

export function recordingEvents() {
	const calls: string[] = [];
	const fallbacks: string[] = [];
	let opened = 0;
	let outageReplays = 0;
	const events: ReplayEvents = {
		storeCall: (store, outcome) => calls.push(`${store}:${outcome}`),
		fallback: (reason) => fallbacks.push(reason),
		breakerOpened: () => opened++,
		replayAttempt: () => calls.push("replay_attempt"),
		outageReplay: () => outageReplays++,
	};
	return { events, calls, fallbacks, opened: () => opened, outageReplays: () => outageReplays };
}

export function recordingLog() {
	const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
	const log: Logger = {
		info: (message, fields = {}) => lines.push({ level: "info", message, fields }),
		warn: (message, fields = {}) => lines.push({ level: "warn", message, fields }),
		error: (message, fields = {}) => lines.push({ level: "error", message, fields }),
	};
	return { log, lines };
}

/**
 * A scripted Upstash: `next` answers each claim; `SET NX GET` (a confirmation or a write-back)
 * finds `existing`, and fails while `readFails` is set. `down()` fails both.
 */
export class ScriptedStore implements ReplayStore {
	readonly name = "upstash";
	calls = 0;
	/** Every SET that reached the store: claims, and `SET NX GET`s (`read: true`). */
	sets: { key: string; value: string; ttlMs: number; read: boolean }[] = [];
	next: () => Promise<ClaimOutcome>;
	/** The value already under a key, as a `SET NX GET` finds it; null means the key was free. */
	existing = new Map<string, string>();
	readFails: ReplayStoreError | null = null;

	constructor(next: () => Promise<ClaimOutcome>) {
		this.next = next;
	}

	/** Upstash failing for claims and reads alike. */
	static down(reason: "error" | "timeout" = "error"): ScriptedStore {
		const store = new ScriptedStore(() => Promise.reject(new ReplayStoreError(reason, "down")));
		store.readFails = new ReplayStoreError(reason, "down");
		return store;
	}

	/** From now on, claims answer `outcome` and reads work. */
	up(outcome: ClaimOutcome = "claimed"): void {
		this.next = () => Promise.resolve(outcome);
		this.readFails = null;
	}

	claim(key: string, value: string, ttlMs: number): Promise<ClaimOutcome> {
		this.calls++;
		this.sets.push({ key, value, ttlMs, read: false });
		return this.next();
	}

	async claimOrRead(claim: StoredClaim): Promise<string | null> {
		this.calls++;
		this.sets.push({ ...claim, read: true });
		if (this.readFails !== null) throw this.readFails;
		const found = this.existing.get(claim.key) ?? null;
		if (found === null) this.existing.set(claim.key, claim.value);
		return found;
	}
}

/** A guard over `primary` with a memory store of 100 keys, a 300 s TTL and a 300 s window. */
export function guard(
	primary: ReplayStore | null,
	options: { failMode?: "memory" | "closed"; clock?: { now: number }; log?: Logger } & Partial<Pick<ReplayGuardOptions, "decisionsMaxKeys">> = {},
) {
	const clock = options.clock ?? { now: EPOCH };
	const recorded = recordingEvents();
	const replay = new ReplayGuard({
		primary,
		memoryOnlyIsNormal: false,
		memory: new MemoryReplayStore(100, () => clock.now),
		breaker: new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5000, now: () => clock.now }),
		failMode: options.failMode ?? "memory",
		prefix: "p:",
		ttlSeconds: 300,
		maxSkewMs: 300_000,
		events: recorded.events,
		log: options.log ?? silent,
		now: () => clock.now,
		isolateId: "iso-1",
		...(options.decisionsMaxKeys === undefined ? {} : { decisionsMaxKeys: options.decisionsMaxKeys }),
	});
	return { replay, clock, ...recorded };
}
