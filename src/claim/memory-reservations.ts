import type { SettleResult } from "./store.ts";

/** A token reservation made in this isolate's memory: whose, how much, in which windows, until when. */
export interface MemoryReservation {
	clientId: string;
	hold: number;
	/** The UTC day and month whose counters the hold was added to. */
	day: string;
	month: string;
	/** When it stops waiting for a report (epoch ms): unreported, its hold stays charged whole. */
	leaseEnd: number;
	settled: boolean;
}

export interface MemoryReservationsOptions {
	/** How long a reservation waits for the origin's report (the same lease as in Upstash). */
	leaseMs: number;
	/** Reservations remembered at once; full, the oldest is forgotten (it stays charged whole). @default 10000 */
	maxOpen?: number;
}

/** What a settle found: the settle script's answers, and with `settled` the reservation, whose unspent hold goes back. */
export type MemorySettle = Exclude<SettleResult, { status: "settled" }> | { status: "settled"; hold: number; counted: number; reservation: MemoryReservation };

/**
 * The token reservations this isolate made in memory (the limiter without Upstash, or
 * `BUDGET_FAIL_MODE=memory` during an outage), so the origin's report settles them here by the
 * settle script's rules (docs/design.md, "Token budgets"): the first report wins, a second is
 * `already_settled`, one after the lease `expired`, an id this isolate does not hold `unknown`.
 * Bounded, and never under-charging: a reservation forgotten to make room, or dropped at its
 * lease's end unreported, keeps its whole hold charged; those holds are counted as expired.
 */
export class MemoryReservations {
	/** By id, in the order they were made: with one lease length, also the order their leases end. */
	private readonly open = new Map<string, MemoryReservation>();
	private readonly leaseMs: number;
	private readonly maxOpen: number;
	/** Tokens of holds charged whole since the last `takeExpired()`. */
	private expired = 0;

	constructor(options: MemoryReservationsOptions) {
		if (!(options.leaseMs > 0)) throw new Error("MemoryReservations: leaseMs must be positive");
		const maxOpen = options.maxOpen ?? 10_000;
		if (!Number.isInteger(maxOpen) || maxOpen < 1) throw new Error("MemoryReservations: maxOpen must be a positive integer");
		this.leaseMs = options.leaseMs;
		this.maxOpen = maxOpen;
	}

	get size(): number {
		return this.open.size;
	}

	/** Remembers a reservation made at `now`, after dropping those whose lease ended (and the oldest, when full). */
	add(id: string, reservation: Pick<MemoryReservation, "clientId" | "hold" | "day" | "month">, now: number): void {
		this.sweep(now);
		if (this.open.size >= this.maxOpen) {
			const [oldest, forgotten] = this.open.entries().next().value!;
			this.open.delete(oldest);
			if (!forgotten.settled) this.expired += forgotten.hold;
		}
		this.open.set(id, { ...reservation, leaseEnd: now + this.leaseMs, settled: false });
	}

	/** Settles `id` with `tokens` spent: counted at most the hold; the entry stays, settled, until its lease ends. */
	settle(id: string, tokens: number, now: number): MemorySettle {
		const reservation = this.open.get(id);
		let found: MemorySettle;
		if (reservation === undefined) found = { status: "unknown" };
		else if (reservation.settled) found = { status: "already_settled" };
		else if (reservation.leaseEnd <= now) {
			this.open.delete(id);
			this.expired += reservation.hold;
			found = { status: "expired" };
		} else {
			reservation.settled = true;
			found = { status: "settled", hold: reservation.hold, counted: Math.min(tokens, reservation.hold), reservation };
		}
		this.sweep(now);
		return found;
	}

	/** The tokens of holds charged whole (unreported at their lease's end, or forgotten) since the last call, for `agent_tokens_total{kind="expired"}`. */
	takeExpired(): number {
		const tokens = this.expired;
		this.expired = 0;
		return tokens;
	}

	/** Drops the reservations whose lease ended, oldest first: their holds stay charged whole. */
	sweep(now: number): void {
		for (const [id, reservation] of this.open) {
			if (reservation.leaseEnd > now) return;
			this.open.delete(id);
			if (!reservation.settled) this.expired += reservation.hold;
		}
	}
}
