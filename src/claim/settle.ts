import type { Background } from "../background.ts";
import type { BudgetEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";
import { reservationWindows } from "./redis-budget.ts";
import type { RideOutcome } from "./ride.ts";
import type { SettleRides } from "./settle-rides.ts";
import { ReplayStoreError, type LimitedClaimStore, type Reservation, type SettleResult } from "./store.ts";

type SettleStore = Pick<LimitedClaimStore, "settle">;

/**
 * The id of a reservation's header report, kept with its settled mark: a reservation has one
 * answer, so one header report (sent again only when its answer was lost). A usage-route report
 * gets a random id of its own, so it never passes for another.
 */
const HEADER_REPORT = "header";

export interface SettlementsOptions {
	/**
	 * Where reservations are held: the limits script's store in Upstash (null without Upstash),
	 * and this isolate's memory (null without limits), which knows only those made here.
	 */
	stores: { primary: SettleStore | null; memory: SettleStore | null };
	/** Where an answer's Upstash settle waits for its client's next claim to carry it (the Upstash store's); none: each is sent alone. */
	rides?: Pick<SettleRides, "offer"> | null;
	events: BudgetEvents;
	log: Logger;
	now?: () => number;
}

/** What a settle found, or that the store could not tell. */
export type Settled = SettleResult | { status: "unavailable" };

/**
 * Settles token reservations from the origin's reports (docs/design.md, "Token budgets"): an
 * answer's `X-Token-Usage` header (nobody waits for it), or `POST /gateway/usage` (the origin
 * waits). A reservation made in this isolate's memory is settled there; any other in Upstash. The first
 * report wins; the store refuses a second, an unknown, another's or an expired reservation,
 * and changes nothing then. What was counted is `settled`; a report above the
 * hold is an `overrun`, counted and logged (the origin spent what another request may have been given).
 */
export class Settlements {
	private readonly options: SettlementsOptions;
	private readonly throttle: LogThrottle;

	constructor(options: SettlementsOptions) {
		this.options = options;
		this.throttle = new LogThrottle(10_000, options.now);
	}

	/**
	 * Settles `reservation` with `tokens` spent, now (the usage route: the origin waits for the
	 * answer): in memory when this isolate holds it (a map look-up), else in Upstash.
	 */
	async report(reservation: string, tokens: number): Promise<Settled> {
		const { primary, memory } = this.options.stores;
		let result: SettleResult = { status: "unknown" };
		try {
			if (memory?.settle !== undefined) result = await memory.settle(reservation, tokens);
			if (result.status === "unknown" && primary?.settle !== undefined) result = await primary.settle(reservation, tokens);
		} catch (error) {
			return this.unavailable(error);
		}
		return this.counted(tokens, result);
	}

	/**
	 * Settles the reservation this request made from its answer's `X-Token-Usage`; nobody waits.
	 * Held in Upstash, it is handed over to ride on the client's next claim in this isolate
	 * (`SettleRides`: no command of its own, nothing more in this request), or, when the isolate's
	 * rides are full, sent alone in `background`; held in memory, settled there in `background`.
	 * A value that is not a whole number of tokens settles nothing, and is logged: the origin
	 * meant to report, and is told why its hold is charged whole when the lease ends.
	 */
	reportHeader(reservation: Pick<Reservation, "id" | "store">, value: string, background: Background): void {
		const tokens = tokenCount(value);
		if (tokens === null) {
			const suppressed = this.throttle.admit("unreadable");
			if (suppressed !== null) {
				this.options.log.warn("the origin's X-Token-Usage is not a whole number of tokens (at most 15 digits): the reservation is charged its whole hold when its lease ends", { suppressed });
			}
			return;
		}
		const { id } = reservation;
		const rides = reservation.store === "upstash" ? (this.options.rides ?? null) : null;
		const windows = rides === null ? null : reservationWindows(id);
		const settled = (outcome: RideOutcome) => void this.told(tokens, outcome);
		if (rides !== null && windows !== null && rides.offer({ ...windows, reservation: id, tokens, report: HEADER_REPORT, settled }, background)) return;
		background.waitUntil(this.settleIn(reservation.store === "memory" ? this.options.stores.memory : this.options.stores.primary, id, tokens));
	}

	/** Settles in one store (a report whose reservation is known to be held there). */
	private async settleIn(store: SettleStore | null, reservation: string, tokens: number): Promise<Settled> {
		let result: SettleResult = { status: "unknown" };
		try {
			if (store?.settle !== undefined) result = await store.settle(reservation, tokens);
		} catch (error) {
			return this.unavailable(error);
		}
		return this.counted(tokens, result);
	}

	/** What a settle that rode found: counted, or the store's failure logged. */
	private told(tokens: number, outcome: RideOutcome): Settled {
		return outcome.status === "unavailable" ? this.unavailable(outcome.error) : this.counted(tokens, outcome);
	}

	/** Counts what a settle found: the tokens settled, and an overrun (logged: the origin should hear of it). */
	private counted(tokens: number, result: SettleResult): SettleResult {
		if (result.status !== "settled") return result;
		const { events, log } = this.options;
		events.tokens("settled", result.counted);
		if (tokens > result.hold) {
			events.tokens("overrun", tokens - result.hold);
			const suppressed = this.throttle.admit("overrun");
			if (suppressed !== null) log.warn("the origin reported more tokens than the request's hold", { hold: result.hold, reported: tokens, suppressed });
		}
		return result;
	}

	private unavailable(error: unknown): { status: "unavailable" } {
		const suppressed = this.throttle.admit("unavailable");
		if (suppressed !== null) {
			this.options.log.warn("a token report could not be settled: the reservation is charged its whole hold when its lease ends", {
				error: error instanceof ReplayStoreError ? error.reason : "error",
				suppressed,
			});
		}
		return { status: "unavailable" };
	}
}

/** An `X-Token-Usage` value: a whole number of tokens (up to 15 digits), else null. */
export function tokenCount(value: string | null | undefined): number | null {
	if (value === null || value === undefined || !/^[0-9]{1,15}$/.test(value.trim())) return null;
	return Number(value.trim());
}
