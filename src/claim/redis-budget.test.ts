import { describe, expect, it } from "vitest";
import type { LimitPolicy } from "../limits/policy.ts";
import { budgetCall, reservationWindows, windowKeys } from "./redis-budget.ts";

const policy: LimitPolicy = { rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 1_000, monthly: 10_000, hold: 100 } };
const request = { key: "k", value: "v", ttlMs: 1_000, clientId: "svc", policy, budget: { hold: 100, nonce: "0".repeat(32) } };
/** The first of a month at 00:30 UTC, in a year to come: the day and the month before are the previous ones. */
const year = new Date().getUTCFullYear() + 1;
const AT = Date.UTC(year, 2, 1, 0, 30);

describe("a reservation id and the windows it holds in", () => {
	it("names its client, day and month, and so the keys its settle reads; one the gateway does not give is null", () => {
		const windows = reservationWindows(`svc:${year}-03-01:-:${"a".repeat(32)}`);
		expect(windows).toEqual({ clientId: "svc", day: `${year}-03-01`, month: "-" });
		for (const id of ["", "svc:x:y:z", `svc:${year}-03-01:${year}-03`, `bad id:-:-:${"a".repeat(32)}`, `svc:-:-:${"g".repeat(32)}`]) expect(reservationWindows(id), id).toBeNull();
		expect(windowKeys("p:", windows!)).toEqual(["p:limit:svc:tokens:leases", "p:limit:svc:tokens:holds", `p:limit:svc:tokens:day:${year}-03-01`]);
		expect(windowKeys("p:", { clientId: "svc", day: "-", month: `${year}-03` })).toEqual(["p:limit:svc:tokens:leases", "p:limit:svc:tokens:holds", `p:limit:svc:tokens:month:${year}-03`]);
	});

	it("a budgeted claim can carry the settle of a reservation whose windows are among its keys: this day or the one before, this month or the one before, or none", () => {
		const call = budgetCall("p:", request, AT, 60_000);
		const previousMonth = `${year}-02`;
		const lastDay = `${year}-02-${new Date(Date.UTC(year, 2, 0)).getUTCDate()}`;
		expect(call.keys.slice(0, 4)).toEqual([`p:limit:svc:tokens:day:${year}-03-01`, `p:limit:svc:tokens:day:${lastDay}`, `p:limit:svc:tokens:month:${year}-03`, `p:limit:svc:tokens:month:${previousMonth}`]);
		for (const [day, month] of [
			[`${year}-03-01`, `${year}-03`],
			[lastDay, previousMonth],
			["-", `${year}-03`],
			[`${year}-03-01`, "-"],
			["-", "-"],
		]) {
			expect(call.holdsIn(day!, month!), `${day} ${month}`).toBe(true);
		}
		for (const [day, month] of [
			[`${year}-02-27`, previousMonth],
			[`${year}-03-01`, `${year - 1}-12`],
			[`${year}-03-02`, `${year}-03`],
			[`${year}-03-01`, `${year}-04`],
		]) {
			expect(call.holdsIn(day!, month!), `${day} ${month}`).toBe(false);
		}
	});
});
