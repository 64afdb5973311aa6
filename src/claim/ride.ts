// What a settle riding on a claim is (docs/design.md, "Token budgets"): the report handed over,
// the settle a claim carries, and what it found.
import type { SettleResult } from "./store.ts";

/** A settle a claim carries: its reservation's id, windows, and the tokens reported. */
export interface Ride {
	reservation: string;
	tokens: number;
	/** This report's own id: the same report sent again (its answer was lost) is answered as the first was. */
	report: string;
	/** The UTC day and month it holds in (`-` where it holds in none), from its id. */
	day: string;
	month: string;
	/** What the carrying claim's script found; null: the claim failed, and the settle is sent alone (a second settle changes nothing). */
	arrive(result: SettleResult | null): void;
}

/** What a settle found, or that the store could not tell (`error`: why). */
export type RideOutcome = SettleResult | { status: "unavailable"; error: unknown };

/** A settle handed over to ride: whose it is, what it settles, and who hears what it found. */
export interface RideRequest {
	clientId: string;
	reservation: string;
	tokens: number;
	report: string;
	day: string;
	month: string;
	/** Told what the settle found: in the request whose claim carried it, or the sweeper's that sent it alone. */
	settled(outcome: RideOutcome): void;
}
