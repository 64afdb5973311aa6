import { MINUTE_MS, utcDay, utcMonth, type LimitName, type LimitPolicy, type LimitState } from "../limits/policy.ts";
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
	/** Tokens held and used this UTC day and month (a hold counts whole until a report gives back what it did not spend), and when each window ends. */
	tokens: { day: string; dayEndsAt: number; today: number; month: string; monthEndsAt: number; thisMonth: number };
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
	/** The UTC month of `at`: with `day`, the token windows a hold went to. */
	month: string;
	slotId: string | null;
	/** Tokens held (0 without a budget). */
	hold: number;
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
	/** How long a slot is held when its release never comes. */
	readonly leaseMs: number;
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

	/**
	 * Checks every limit of `policy` and, when none is reached, spends one request of each; with
	 * a budget, holds up to `askedHold` tokens of what is left (docs/design.md, "Token budgets").
	 */
	take(clientId: string, policy: LimitPolicy, now: number, askedHold = 0): { claim: LimitedClaim; take: MemoryTake | null } {
		const usage = this.usage(clientId, now);
		const { day, endsInMs } = utcDay(now);
		if (usage.day !== day) {
			usage.day = day;
			usage.dayEndsAt = now + endsInMs;
			usage.today = 0;
		}
		const budget = policy.budget === undefined ? null : this.tokensLeft(usage, policy, now, askedHold);
		if (budget !== null && budget.refused !== null) {
			const retryAfterMs = budget.refused === "daily_tokens" ? endsInMs : utcMonth(now).endsInMs;
			return { claim: limited(budget.refused, retryAfterMs, { rpm: null, rpd: null, concurrent: null, ...budget.state }), take: null };
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
		const hold = budget?.hold ?? 0;
		if (budget !== null) {
			usage.tokens.today += hold;
			usage.tokens.thisMonth += hold;
			state.dailyTokens = budget.state.dailyTokens && { ...budget.state.dailyTokens, remaining: budget.state.dailyTokens.remaining - hold };
			state.monthlyTokens = budget.state.monthlyTokens && { ...budget.state.monthlyTokens, remaining: budget.state.monthlyTokens.remaining - hold };
		}
		// Only a new client can end before the bound; an old one's end only moves later.
		this.nextUsefulSweep = Math.min(this.nextUsefulSweep, idleFrom(usage));
		return { claim: { outcome: "claimed", state, slot }, take: { clientId, at: now, day, month: usage.tokens.month, slotId, hold } };
	}

	/** What is left of a client's token budget in this isolate, the hold it can have, and the window that refuses it (null: none). */
	private tokensLeft(usage: ClientUsage, policy: LimitPolicy, now: number, askedHold: number) {
		const budget = policy.budget!;
		const { day, endsInMs } = utcDay(now);
		const { month, endsInMs: monthEndsInMs } = utcMonth(now);
		const tokens = usage.tokens;
		if (tokens.day !== day) Object.assign(tokens, { day, dayEndsAt: now + endsInMs, today: 0 });
		if (tokens.month !== month) Object.assign(tokens, { month, monthEndsAt: now + monthEndsInMs, thisMonth: 0 });
		const dayLeft = budget.daily === null ? null : budget.daily - tokens.today;
		const monthLeft = budget.monthly === null ? null : budget.monthly - tokens.thisMonth;
		const state: Pick<LimitState, "dailyTokens" | "monthlyTokens"> = {
			dailyTokens: dayLeft === null ? null : { remaining: dayLeft, resetMs: endsInMs },
			monthlyTokens: monthLeft === null ? null : { remaining: monthLeft, resetMs: monthEndsInMs },
		};
		const refused = monthLeft !== null && monthLeft <= 0 ? "monthly_tokens" : dayLeft !== null && dayLeft <= 0 ? "daily_tokens" : null;
		const hold = Math.max(0, Math.min(askedHold, dayLeft ?? Number.POSITIVE_INFINITY, monthLeft ?? Number.POSITIVE_INFINITY));
		return { state, hold, refused: refused as "daily_tokens" | "monthly_tokens" | null };
	}

	/** Undoes a `take()` whose replay claim did not happen (a duplicate, a full store). */
	refund(take: MemoryTake): void {
		const usage = this.clients.get(take.clientId);
		if (usage === undefined) return;
		const index = usage.minute.lastIndexOf(take.at);
		if (index !== -1) usage.minute.splice(index, 1);
		if (usage.day === take.day && usage.today > 0) usage.today--;
		if (take.slotId !== null) usage.inFlight.delete(take.slotId);
		usage.tokens.today = Math.max(0, usage.tokens.today - take.hold);
		usage.tokens.thisMonth = Math.max(0, usage.tokens.thisMonth - take.hold);
		this.nextUsefulSweep = Math.min(this.nextUsefulSweep, idleFrom(usage));
	}

	/**
	 * Gives back the part of a settled hold that was not spent, in the windows it was held in
	 * that are still the client's (a window that ended keeps what it counted, as in Upstash).
	 */
	giveBack(clientId: string, windows: { day: string; month: string }, tokens: number): void {
		const usage = this.clients.get(clientId);
		if (usage === undefined || tokens <= 0) return;
		const { tokens: counted } = usage;
		if (counted.day === windows.day) counted.today = Math.max(0, counted.today - tokens);
		if (counted.month === windows.month) counted.thisMonth = Math.max(0, counted.thisMonth - tokens);
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
		const tokens = { day: "", dayEndsAt: Number.NEGATIVE_INFINITY, today: 0, month: "", monthEndsAt: Number.NEGATIVE_INFINITY, thisMonth: 0 };
		usage = { minute: [], day: "", dayEndsAt: Number.NEGATIVE_INFINITY, today: 0, inFlight: new Map(), tokens };
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
	const { tokens } = usage;
	if (tokens.today > 0 && tokens.dayEndsAt > idleAt) idleAt = tokens.dayEndsAt;
	if (tokens.thisMonth > 0 && tokens.monthEndsAt > idleAt) idleAt = tokens.monthEndsAt;
	return idleAt;
}

function limited(limit: LimitName, retryAfterMs: number, state: LimitState): LimitedClaim {
	return { outcome: "limited", limit, retryAfterMs, state };
}

/** Removes the times at or before `cutoff` from the front of an ascending list. */
function dropBefore(times: number[], cutoff: number): void {
	let count = 0;
	while (count < times.length && times[count]! <= cutoff) count++;
	if (count > 0) times.splice(0, count);
}
