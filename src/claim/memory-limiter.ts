import { MINUTE_MS, utcDay, type LimitPolicy, type LimitState } from "../limits/policy.ts";
import { ReplayStoreError, type LimitedClaim } from "./store.ts";

/** One client's spending in this isolate. */
interface ClientUsage {
	/** Times of the requests accepted in the last 60 s, oldest first. */
	minute: number[];
	day: string;
	/** When `day` ends (epoch ms): until then a count spent in it is live. */
	dayEndsAt: number;
	today: number;
	/** Slots in flight: id to lease end. */
	inFlight: Map<string, number>;
}

export interface MemoryLimiterOptions {
	/** How long a slot stays held if its release never comes. */
	leaseMs: number;
	/**
	 * Clients tracked at once. Full, it drops the clients whose counters hold nothing any more;
	 * full of live counters, it refuses (a `full` store error: 503), since forgetting a live
	 * counter would give its client its quota again. @default 10000
	 */
	maxClients?: number;
}

/** A spend `take()` made, so `refund()` can undo it when the claim did not happen after all. */
export interface MemoryTake {
	clientId: string;
	at: number;
	day: string;
	slotId: string | null;
}

const CONCURRENT_RETRY_MS = 1_000;

/**
 * The limits in one isolate's memory, with the script's rules (src/claim/script.ts): the
 * limiter with no Upstash at all, and each isolate's own during an outage. It only sees this
 * isolate's requests. Bounded in clients: with a shared secret a caller can make up client ids.
 * It never forgets a live counter to make room (docs/design.md, "Per-client limits"), as the
 * memory replay store never evicts a live key.
 */
export class MemoryLimiter {
	private readonly clients = new Map<string, ClientUsage>();
	private readonly leaseMs: number;
	private readonly maxClients: number;
	private slots = 0;
	/** No client's counters end before this time, so a sweep before it frees nothing. */
	private nextUsefulSweep = Number.NEGATIVE_INFINITY;

	constructor(options: MemoryLimiterOptions) {
		if (!(options.leaseMs > 0)) throw new Error("MemoryLimiter: leaseMs must be positive");
		const maxClients = options.maxClients ?? 10_000;
		if (!Number.isInteger(maxClients) || maxClients < 1) throw new Error("MemoryLimiter: maxClients must be a positive integer");
		this.leaseMs = options.leaseMs;
		this.maxClients = maxClients;
	}

	get size(): number {
		return this.clients.size;
	}

	/** Checks every limit of `policy` and, when none is reached, spends one request of each. */
	take(clientId: string, policy: LimitPolicy, now: number): { claim: LimitedClaim; take: MemoryTake | null } {
		const usage = this.usage(clientId, now);
		const { day, endsInMs } = utcDay(now);
		if (usage.day !== day) {
			usage.day = day;
			usage.dayEndsAt = now + endsInMs;
			usage.today = 0;
		}
		const rpdLeft = policy.rpd === null ? null : policy.rpd - usage.today;
		if (rpdLeft !== null && rpdLeft <= 0) {
			return { claim: limited("rpd", endsInMs, { rpm: null, rpd: { remaining: 0, resetMs: endsInMs }, concurrent: null }), take: null };
		}
		const rpd = rpdLeft === null ? null : { remaining: rpdLeft, resetMs: endsInMs };

		dropBefore(usage.minute, now - MINUTE_MS);
		const windowResetMs = usage.minute.length === 0 ? MINUTE_MS : usage.minute[0]! + MINUTE_MS - now;
		const rpmLeft = policy.rpm === null ? null : policy.rpm - usage.minute.length;
		if (rpmLeft !== null && rpmLeft <= 0) {
			return { claim: limited("rpm", windowResetMs, { rpm: { remaining: 0, resetMs: windowResetMs }, rpd, concurrent: null }), take: null };
		}
		const rpm = rpmLeft === null ? null : { remaining: rpmLeft, resetMs: windowResetMs };

		if (policy.concurrent !== null) {
			for (const [id, leaseEnd] of usage.inFlight) if (leaseEnd <= now) usage.inFlight.delete(id);
			if (usage.inFlight.size >= policy.concurrent) {
				return { claim: limited("concurrent", CONCURRENT_RETRY_MS, { rpm, rpd, concurrent: { remaining: 0 } }), take: null };
			}
		}

		// Spend: every limit passed.
		const state: LimitState = { rpm: null, rpd: null, concurrent: null };
		if (rpm !== null) {
			usage.minute.push(now);
			state.rpm = { remaining: rpm.remaining - 1, resetMs: rpm.resetMs };
		}
		if (rpd !== null) {
			usage.today++;
			state.rpd = { remaining: rpd.remaining - 1, resetMs: rpd.resetMs };
		}
		let slotId: string | null = null;
		if (policy.concurrent !== null) {
			slotId = `memory:${++this.slots}`;
			usage.inFlight.set(slotId, now + this.leaseMs);
			state.concurrent = { remaining: policy.concurrent - usage.inFlight.size };
		}
		const slot = slotId === null ? null : { clientId, id: slotId, store: "memory" as const };
		// Only a new client can end before the bound; an old one's end only moves later.
		this.nextUsefulSweep = Math.min(this.nextUsefulSweep, idleFrom(usage));
		return { claim: { outcome: "claimed", state, slot }, take: { clientId, at: now, day, slotId } };
	}

	/** Undoes a `take()` whose replay claim did not happen (a duplicate, a full store). */
	refund(take: MemoryTake): void {
		const usage = this.clients.get(take.clientId);
		if (usage === undefined) return;
		const index = usage.minute.lastIndexOf(take.at);
		if (index !== -1) usage.minute.splice(index, 1);
		if (usage.day === take.day && usage.today > 0) usage.today--;
		if (take.slotId !== null) usage.inFlight.delete(take.slotId);
		this.nextUsefulSweep = Math.min(this.nextUsefulSweep, idleFrom(usage));
	}

	/** Frees a slot when its answer ended. */
	release(clientId: string, slotId: string): void {
		const usage = this.clients.get(clientId);
		if (usage === undefined || !usage.inFlight.delete(slotId)) return;
		// Its client may hold nothing live any more: the next sweep may drop it.
		this.nextUsefulSweep = Math.min(this.nextUsefulSweep, idleFrom(usage));
	}

	private usage(clientId: string, now: number): ClientUsage {
		let usage = this.clients.get(clientId);
		if (usage !== undefined) return usage;
		if (this.clients.size >= this.maxClients) {
			this.dropIdle(now);
			if (this.clients.size >= this.maxClients) throw new ReplayStoreError("full", "memory limiter is full of live counters");
		}
		usage = { minute: [], day: "", dayEndsAt: Number.NEGATIVE_INFINITY, today: 0, inFlight: new Map() };
		this.clients.set(clientId, usage);
		return usage;
	}

	/**
	 * Drops the clients whose counters hold nothing live: nothing in the last 60 s, no slot in
	 * flight, nothing spent in a day that has not ended. Does nothing before the first can end.
	 */
	private dropIdle(now: number): void {
		if (now < this.nextUsefulSweep) return;
		let earliest = Number.POSITIVE_INFINITY;
		for (const [id, usage] of this.clients) {
			const idleAt = idleFrom(usage);
			if (idleAt <= now) this.clients.delete(id);
			else if (idleAt < earliest) earliest = idleAt;
		}
		this.nextUsefulSweep = earliest;
	}
}

/** When a client's counters stop holding anything (epoch ms): its last minute entry leaves, its last lease ends, its day ends. */
function idleFrom(usage: ClientUsage): number {
	let idleAt = usage.minute.length === 0 ? Number.NEGATIVE_INFINITY : usage.minute[usage.minute.length - 1]! + MINUTE_MS;
	for (const leaseEnd of usage.inFlight.values()) if (leaseEnd > idleAt) idleAt = leaseEnd;
	if (usage.today > 0 && usage.dayEndsAt > idleAt) idleAt = usage.dayEndsAt;
	return idleAt;
}

function limited(limit: "rpm" | "rpd" | "concurrent", retryAfterMs: number, state: LimitState): LimitedClaim {
	return { outcome: "limited", limit, retryAfterMs, state };
}

/** Removes the times at or before `cutoff` from the front of an ascending list. */
function dropBefore(times: number[], cutoff: number): void {
	let count = 0;
	while (count < times.length && times[count]! <= cutoff) count++;
	if (count > 0) times.splice(0, count);
}
