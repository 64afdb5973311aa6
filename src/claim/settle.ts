import type { BudgetEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";
import { ReplayStoreError, type LimitedClaimStore, type SettleResult } from "./store.ts";

export interface SettlementsOptions {
	/**
	 * Where reservations are held: the limits script's store in Upstash (null without Upstash),
	 * and this isolate's memory (null without limits), which knows only those made here.
	 */
	stores: { primary: Pick<LimitedClaimStore, "settle"> | null; memory: Pick<LimitedClaimStore, "settle"> | null };
	events: BudgetEvents;
	log: Logger;
	now?: () => number;
}

/**
 * Settles token reservations from the origin's reports (docs/design.md, "Token budgets"): an
 * answer's `X-Token-Usage` header (in the background of that request), or `POST /gateway/usage`.
 * A reservation made in this isolate's memory is settled there; any other in Upstash. The first
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
	 * Settles `reservation` with `tokens` spent: what the store found, or `unavailable` when it
	 * could not tell. `mayWait`: nobody waits for the answer (an answer's header, settled in the
	 * background), so an Upstash settle may ride on the client's next claim (`SettleRides`).
	 */
	async report(reservation: string, tokens: number, options: { mayWait?: boolean } = {}): Promise<SettleResult | { status: "unavailable" }> {
		const { stores, events, log } = this.options;
		let result: SettleResult = { status: "unknown" };
		try {
			// A map look-up in this isolate first: a reservation made here in memory is nowhere else.
			if (stores.memory?.settle !== undefined) result = await stores.memory.settle(reservation, tokens);
			if (result.status === "unknown" && stores.primary?.settle !== undefined) result = await stores.primary.settle(reservation, tokens, options.mayWait === true);
		} catch (error) {
			const suppressed = this.throttle.admit("unavailable");
			if (suppressed !== null) {
				log.warn("a token report could not be settled: the reservation is charged its whole hold when its lease ends", {
					error: error instanceof ReplayStoreError ? error.reason : "error",
					suppressed,
				});
			}
			return { status: "unavailable" };
		}
		if (result.status !== "settled") return result;
		events.tokens("settled", result.counted);
		if (tokens > result.hold) {
			events.tokens("overrun", tokens - result.hold);
			const suppressed = this.throttle.admit("overrun");
			if (suppressed !== null) log.warn("the origin reported more tokens than the request's hold", { hold: result.hold, reported: tokens, suppressed });
		}
		return result;
	}

	/**
	 * Settles `reservation` from its answer's `X-Token-Usage` (nobody waits: the settle may ride).
	 * A value that is not a whole number of tokens settles nothing, and is logged: the origin
	 * meant to report, and is told why its hold is charged whole when the lease ends.
	 */
	async reportHeader(reservation: string, value: string): Promise<SettleResult | { status: "unavailable" } | { status: "unreadable" }> {
		const tokens = tokenCount(value);
		if (tokens !== null) return this.report(reservation, tokens, { mayWait: true });
		const suppressed = this.throttle.admit("unreadable");
		if (suppressed !== null) {
			this.options.log.warn("the origin's X-Token-Usage is not a whole number of tokens (at most 15 digits): the reservation is charged its whole hold when its lease ends", { suppressed });
		}
		return { status: "unreadable" };
	}
}

/** An `X-Token-Usage` value: a whole number of tokens (up to 15 digits), else null. */
export function tokenCount(value: string | null | undefined): number | null {
	if (value === null || value === undefined || !/^[0-9]{1,15}$/.test(value.trim())) return null;
	return Number(value.trim());
}
