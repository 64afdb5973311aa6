import type { SettleResult } from "./store.ts";

/** A settle waiting for a claim of its client to carry it: its reservation's id, windows, and the tokens reported. */
export interface Ride {
	reservation: string;
	tokens: number;
	/** The UTC day and month it holds in (`-` where it holds in none), from its id. */
	day: string;
	month: string;
	/** What the carrying claim's script found; null: it was not carried (the claim failed), send it alone. */
	arrive(result: SettleResult | null): void;
}

export interface SettleRidesOptions {
	/** How long a settle waits for a claim to carry it before it is sent alone. */
	waitMs: number;
	/** At most this many wait in the isolate; past it a settle is sent alone at once. @default 1024 */
	maxWaiting?: number;
}

/**
 * Settles that ride on the next claim (docs/design.md, "Token budgets"). A budgeted answer's
 * `X-Token-Usage` need not be settled at once: the hold only keeps back tokens the client has
 * not spent. So the settle waits, up to `waitMs`, for this isolate's next budgeted claim of the
 * same client, which carries it in its own limits script (no command of its own); only one that
 * no claim took is sent alone. A busy client's settles cost no Upstash command; an idle one's,
 * one each, as before. The ride is in this isolate's memory: were the isolate to die with
 * settles waiting, their reservations are charged whole when their leases end, as for any
 * origin that did not report (never less than was spent).
 *
 * @example
 * const rides = new SettleRides({ waitMs: 250 });
 * // In the background of the answer that reported usage:
 * const result = await rides.wait("svc", reservation, 120); // null: no claim took it, send it alone
 */
export class SettleRides {
	private readonly waiting = new Map<string, Ride[]>();
	private readonly waitMs: number;
	private readonly maxWaiting: number;
	private size = 0;

	constructor(options: SettleRidesOptions) {
		if (!(options.waitMs > 0)) throw new Error("SettleRides: waitMs must be positive");
		this.waitMs = options.waitMs;
		this.maxWaiting = options.maxWaiting ?? 1024;
		if (!(this.maxWaiting > 0)) throw new Error("SettleRides: maxWaiting must be positive");
	}

	/** Settles waiting now, in the whole isolate. */
	get waitingCount(): number {
		return this.size;
	}

	/**
	 * Waits for a claim of `clientId` to carry this settle: what its script found, or null when
	 * none took it within `waitMs` (or the claim that took it failed): then the caller sends it alone.
	 */
	wait(clientId: string, reservation: { id: string; day: string; month: string }, tokens: number): Promise<SettleResult | null> {
		if (this.size >= this.maxWaiting) return Promise.resolve(null);
		let resolve!: (result: SettleResult | null) => void;
		const promise = new Promise<SettleResult | null>((done) => (resolve = done));
		const ride: Ride = { reservation: reservation.id, tokens, day: reservation.day, month: reservation.month, arrive: resolve };
		const list = this.waiting.get(clientId);
		if (list === undefined) this.waiting.set(clientId, [ride]);
		else list.push(ride);
		this.size++;
		// Untaken when the wait ends: sent alone. A ride a claim took waits for that claim's answer
		// (bounded by the claim's budget). The timer is never cleared: in workerd a clearTimeout
		// costs more than letting it fire and find the ride gone.
		setTimeout(() => {
			if (this.drop(clientId, ride)) resolve(null);
		}, this.waitMs);
		return promise;
	}

	/**
	 * Takes up to `max` of `clientId`'s waiting settles whose windows `holdsIn` accepts (those a
	 * claim at this instant has among its keys), oldest first. Each must then `arrive`.
	 */
	take(clientId: string, holdsIn: (day: string, month: string) => boolean, max: number): Ride[] {
		const list = this.waiting.get(clientId);
		if (list === undefined) return [];
		const taken: Ride[] = [];
		const kept: Ride[] = [];
		for (const ride of list) {
			if (taken.length < max && holdsIn(ride.day, ride.month)) taken.push(ride);
			else kept.push(ride);
		}
		if (kept.length === 0) this.waiting.delete(clientId);
		else this.waiting.set(clientId, kept);
		this.size -= taken.length;
		return taken;
	}

	private drop(clientId: string, ride: Ride): boolean {
		const list = this.waiting.get(clientId);
		const index = list?.indexOf(ride) ?? -1;
		if (index < 0) return false;
		list!.splice(index, 1);
		if (list!.length === 0) this.waiting.delete(clientId);
		this.size--;
		return true;
	}
}
