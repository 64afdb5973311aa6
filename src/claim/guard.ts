import type { FallbackReason, StoreFailureReason, StoreName } from "../events.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import { LogThrottle } from "../log.ts";
import type { BreakerState } from "./breaker.ts";
import type { Claim, ReplayDecision, ReplayGuardOptions } from "./guard-types.ts";
import { claimInMemory, claimUnderLimits, spendOf, type Answer } from "./limited-claim.ts";
import { Decisions, keyDigest } from "./memory.ts";
import { WriteBacks } from "./reconcile.ts";
import { ReplayStoreError, type ClaimOutcome, type HeldSlot, type LimitGrant, type LimitRefusal, type ReplayStore } from "./store.ts";

export type { ReplayDecision, ReplayGuardOptions } from "./guard-types.ts";

const LOG_INTERVAL_MS = 10_000;

/**
 * Claims each verified signature once (docs/design.md, "Replay protection"): in Upstash when
 * configured, else, or when Upstash fails and the fail mode is `memory`, in this isolate's
 * memory. A claim made in memory stays a replay here until it expires (the memory store never
 * evicts a live key), and is written to Upstash once it answers again (`reconcile()`).
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
	private readonly decisions: Decisions;
	private readonly writeBacks: WriteBacks;

	constructor(options: ReplayGuardOptions) {
		this.options = options;
		this.now = options.now ?? Date.now;
		this.throttle = new LogThrottle(LOG_INTERVAL_MS, this.now);
		this.decisions = new Decisions(options.decisionsMaxKeys ?? Math.ceil(options.memory.maxKeys / 2));
		const isolateId = options.isolateId ?? crypto.randomUUID();
		this.isolateId = isolateId;
		this.writeBacks = new WriteBacks({
			memory: options.memory,
			prefix: options.prefix,
			valueOf: (claim) => claimValue(claim, isolateId),
			events: options.events,
			log: options.log,
			now: this.now,
		});
	}

	/** Claims made in memory during an outage, slot releases that failed and lost claims' holds, not yet written to Upstash. */
	get pendingReconciliation(): number {
		// The maps' own sizes: asked on every request, without a call into reconcile.ts.
		return this.writeBacks.pending.size + this.writeBacks.releases.size + this.writeBacks.cancels.size;
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
	 * The key must outlive the last instant the same timestamp passes the skew check
	 * (`timestamp + maxSkewMs`, accepted), so it lives one millisecond past it; and never less
	 * than the configured TTL.
	 */
	ttlMs(timestampMs: number, nowMs: number): number {
		return Math.max(timestampMs + this.options.maxSkewMs + 1 - nowMs, this.options.ttlSeconds * 1000);
	}

	/** With a `policy`, the claim also checks and spends the client's limits, in the same step. */
	/** With a token budget in `policy`, `tokenHold` is the hold asked for (`token_hold`, or the client's smaller `X-Token-Limit`). */
	async claim(replayId: string, clientId: string, timestamp: string, policy: LimitPolicy | null = null, tokenHold: number | null = null): Promise<ReplayDecision> {
		const now = this.now();
		const key = this.options.prefix + replayId;
		const id = await keyDigest(key);
		const claim = { key, clientId, timestamp, counter: ++this.counter, ttlMs: this.ttlMs(Number(timestamp), now), policy, tokenHold };
		const { primary, breaker, memory } = this.options;
		if (primary === null) return this.claimInMemory(id, claim, null);

		// What this isolate knows is a replay without a call, even during an outage: a key
		// Upstash holds, or a claim made here in memory (until it expires, written back or not).
		if (this.decisions.has(id, now)) return this.replay("upstash", claim, true);
		if (memory.has(id)) return this.replay("memory", claim, true);

		let fallback: FallbackReason = "breaker_open";
		if (breaker.tryAcquire()) {
			const outcome = await this.claimInUpstash(primary, claim, now);
			if (isAnswer(outcome)) {
				breaker.recordSuccess();
				this.logConnected();
				return this.settle(id, claim, outcome);
			}
			if (breaker.recordFailure()) this.options.events.breakerOpened();
			this.connected = false;
			fallback = outcome === "timeout" ? "timeout" : "error";
		}
		this.lastDegradedAt = now;
		// Budgets are refused while Upstash fails, whatever the fail mode, unless the operator opted into per-isolate budgets.
		if (policy?.budget !== undefined && this.options.budgetFailMode !== "memory") return { status: "unavailable", store: "upstash", reason: fallback, budget: true };
		if (this.options.failMode === "closed") return { status: "unavailable", store: "upstash", reason: fallback };
		this.options.events.fallback(fallback);
		return this.claimInMemory(id, claim, fallback);
	}

	/**
	 * Writes the claims made in memory during an outage to Upstash, at most a few per call,
	 * once it answers again. Run it in the background of a request whose claim Upstash
	 * answered: `ctx.waitUntil(replay.reconcile())`. Resolves at once when there is nothing to
	 * do, Upstash has not answered since its last failure, or a run is under way.
	 */
	async reconcile(): Promise<void> {
		const { primary, breaker, limits } = this.options;
		if (primary === null || !this.connected || breaker.state !== "closed") return;
		await this.writeBacks.run(primary, limits?.primary ?? undefined);
	}

	/**
	 * Frees a `concurrent` slot where it is held, when its answer ended. A release Upstash did
	 * not take is kept and sent again with the write-backs once it answers (docs/design.md,
	 * "Per-client limits"): a slot never outlives its request.
	 */
	async release(slot: HeldSlot): Promise<void> {
		const { limits } = this.options;
		const store = slot.store === "upstash" ? limits?.primary : limits?.memory;
		if (store !== undefined && store !== null) await this.writeBacks.release(store, slot);
	}

	/**
	 * One `SET NX` within its budget; a timeout is confirmed with `SET NX GET` within a second
	 * budget (its value names this claim, so its own late `SET` reads as claimed), because a
	 * slow answer is not an outage: a copy's `SET` in another process may have answered OK.
	 */
	private async claimInUpstash(primary: ReplayStore, claim: Claim, now: number): Promise<Answer | StoreFailureReason> {
		const value = claimValue(claim, this.isolateId);
		const limited = this.options.limits?.primary;
		// Under a limit policy, the limits script claims the key instead (one command all the same); a lost run's slot and hold are given back later.
		if (claim.policy !== null && limited) return claimUnderLimits(limited, { ...claim, policy: claim.policy }, value, (to, run) => this.call(to, run), now, (lost) => this.writeBacks.addLost(lost));
		const first = await this.call(primary, () => primary.claim(claim.key, value, claim.ttlMs));
		if (first !== "timeout" || primary.claimOrRead === undefined) return first;
		return this.call(primary, async () => {
			const found = await primary.claimOrRead!({ key: claim.key, value, ttlMs: claim.ttlMs });
			return found === null || found === value ? "claimed" : "duplicate";
		});
	}

	/** One store call, counted with its outcome and duration; a failure says why. */
	private async call<A extends Answer>(store: { name: StoreName }, command: () => Promise<A>): Promise<A | StoreFailureReason> {
		const started = performance.now();
		let outcome: A | StoreFailureReason;
		try {
			outcome = await command();
		} catch (error) {
			outcome = error instanceof ReplayStoreError ? error.reason : "error";
		}
		this.options.events.storeCall(store.name, isAnswer(outcome) ? outcomeOf(outcome) : outcome, (performance.now() - started) / 1000);
		return outcome;
	}

	/** An answer from Upstash, weighed against what this isolate decided while it was on its way. */
	private settle(id: string, claim: Claim, answer: Answer): ReplayDecision {
		const outcome = outcomeOf(answer);
		const now = this.now();
		// Upstash holds the key now, whatever the answer: a refusal claims it too.
		this.decisions.record(id, now + claim.ttlMs, now);
		if (outcome === "duplicate") return this.replay("upstash", claim);
		if (this.options.memory.has(id)) {
			// A copy fell back to memory while this call was on its way and was accepted: this one
			// is the replay. Upstash holds the key now, so there is nothing to write back.
			this.writeBacks.settled(id);
			return this.replay("upstash", claim);
		}
		if (outcome === "limited") return { status: "limited", store: "upstash", refusal: answer as LimitRefusal };
		return { status: "claimed", store: "upstash", fallback: null, ...grantOf(answer) };
	}

	private async claimInMemory(id: string, claim: Claim, fallback: FallbackReason | null): Promise<ReplayDecision> {
		const { memory, primary, limits } = this.options;
		// Checked again: a copy's Upstash answer may have landed while this one's call failed.
		if (primary !== null && this.decisions.has(id, this.now())) return this.replay("upstash", claim, true);
		const answer = await this.call<Answer>(memory, () => claimInMemory(memory, limits?.memory, id, claim));
		const outcome = isAnswer(answer) ? outcomeOf(answer) : answer;
		if (outcome === "duplicate") return this.replay("memory", claim);
		if (outcome === "claimed" || outcome === "limited") {
			// The key is claimed in memory (a refusal claims it too): written back, with the quota a
			// claim spent, unless a copy's Upstash answer landed meanwhile, since Upstash holds the key then.
			const now = this.now();
			if (primary !== null && !this.decisions.has(id, now)) this.writeBacks.add(id, claim, outcome === "claimed" ? spendOf(claim.policy, now) : undefined);
			if (outcome === "limited") return { status: "limited", store: "memory", refusal: answer as LimitRefusal };
			return { status: "claimed", store: "memory", fallback, ...grantOf(answer as Answer) };
		}
		const suppressed = this.throttle.admit("refused");
		if (suppressed !== null) this.options.log.error("memory replay store refused a claim", { reason: outcome, suppressed });
		return { status: "unavailable", store: "memory", reason: outcome };
	}

	private replay(store: StoreName, claim: Claim, cached = false): ReplayDecision {
		this.options.events.replayAttempt();
		const suppressed = this.throttle.admit("replay");
		if (suppressed !== null) {
			this.options.log.warn("replay attempt detected", { client_id: claim.clientId, timestamp: claim.timestamp, store, suppressed });
		}
		return cached ? { status: "replay", store, cached: true } : { status: "replay", store };
	}

	private logConnected(): void {
		if (this.connected) return;
		this.connected = true;
		this.options.log.info("Redis replay cache connected", { store: "upstash" });
	}
}

/** The value a claim stores: `clientId:timestamp:isolateId:counter`, naming this one claim among all. */
export function claimValue(claim: { clientId: string; timestamp: string; counter: number }, isolateId: string): string {
	return `${claim.clientId}:${claim.timestamp}:${isolateId}:${claim.counter}`;
}

/** An answer, as opposed to the reason a store could not give one. */
function isAnswer(outcome: Answer | StoreFailureReason): outcome is Answer {
	return typeof outcome !== "string" || outcome === "claimed" || outcome === "duplicate";
}

/** A plain claim's answer, or a limited claim's outcome (claimed, duplicate, or limited). */
function outcomeOf(answer: Answer): ClaimOutcome | "limited" {
	return typeof answer === "string" ? answer : answer.outcome;
}

/** What a limited claim leaves the client, when it was claimed. */
function grantOf(answer: Answer): { limits?: LimitGrant } {
	if (typeof answer === "string" || answer.outcome !== "claimed") return {};
	const { state, slot, reservation, expiredTokens } = answer;
	return { limits: { state, slot, ...(reservation === undefined ? {} : { reservation }), ...(expiredTokens === undefined ? {} : { expiredTokens }) } };
}
