// The origin's part in token budgets (docs/design.md, "Token budgets"), as the demo backend plays
// it: read the hold the gateway forwards and stop there, then report what was spent, in the
// answer's header or, after a stream, through the gateway's usage route.
import type { IncomingHttpHeaders } from "node:http";

/** What the gateway sent about this request's budget: nothing for a client without one. */
export interface BudgetRequest {
	/** `X-Token-Hold`: the most this request may spend; null when the gateway sent none. */
	hold: number | null;
	/** `X-Token-Reservation`: what a report names; null when the gateway sent none. */
	reservation: string | null;
	/** `X-Gateway-Token`: the gateway's `ORIGIN_TOKEN`, which the usage route also takes. */
	gatewayToken: string | null;
}

/** How the demo reports what a request spent: a query knob (`report=`) for tests. */
export const REPORTS = ["header", "route", "both", "none"] as const;
export type Report = (typeof REPORTS)[number];

/** One report sent to the usage route, and how the gateway answered it. */
export interface Settlement {
	reservation: string;
	tokens: number;
	/** The gateway's status, or why nothing was sent or answered. */
	status: number | "unreachable" | "no gateway" | "no token";
}

export const USAGE_HEADER = "X-Token-Usage";

export function budgetOf(headers: IncomingHttpHeaders): BudgetRequest {
	const one = (name: string) => {
		const value = headers[name];
		return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
	};
	const hold = one("x-token-hold");
	return {
		hold: hold !== null && /^[0-9]{1,15}$/.test(hold) ? Number(hold) : null,
		reservation: one("x-token-reservation"),
		gatewayToken: one("x-gateway-token"),
	};
}

/** What the agent loop spends: what it would (`wanted`), stopped at the hold unless told to ignore it. */
export function spend(wanted: number, budget: BudgetRequest, ignoreHold: boolean): number {
	return budget.hold === null || ignoreHold ? wanted : Math.min(wanted, budget.hold);
}

/**
 * Sends reports to the gateway's `POST /gateway/usage` and keeps each with its answer. The
 * token is the configured one, else the one the gateway sent with the request (the demo trusts
 * its gateway; a real backend checks `X-Gateway-Token` against its own copy).
 */
export class UsageReporter {
	gatewayUrl: string | null;
	readonly settlements: Settlement[] = [];
	private readonly originToken: string | null;
	private readonly pending = new Set<Promise<void>>();

	constructor(options: { gatewayUrl?: string | null; originToken?: string | null }) {
		this.gatewayUrl = options.gatewayUrl?.replace(/\/+$/, "") ?? null;
		this.originToken = options.originToken ?? null;
	}

	/** Reports `tokens` for the request's reservation (none: nothing to report). */
	settle(budget: BudgetRequest, tokens: number): void {
		if (budget.reservation === null) return;
		const done = this.send(budget.reservation, this.originToken ?? budget.gatewayToken, tokens);
		this.pending.add(done);
		void done.finally(() => this.pending.delete(done));
	}

	/** Waits for the reports still on their way. */
	async idle(): Promise<void> {
		await Promise.all([...this.pending]);
	}

	private async send(reservation: string, token: string | null, tokens: number): Promise<void> {
		const record = (status: Settlement["status"]) => void this.settlements.push({ reservation, tokens, status });
		if (this.gatewayUrl === null) return record("no gateway");
		if (token === null) return record("no token");
		try {
			const response = await fetch(`${this.gatewayUrl}/gateway/usage`, {
				method: "POST",
				headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
				body: JSON.stringify({ reservation, tokens }),
				signal: AbortSignal.timeout(5_000),
			});
			await response.arrayBuffer();
			record(response.status);
		} catch {
			record("unreachable");
		}
	}
}
