import { describe, expect, it } from "vitest";
import type { RideRequest } from "./ride.ts";
import { Settlements, tokenCount } from "./settle.ts";
import { ReplayStoreError, type SettleResult } from "./store.ts";

/** A store that answers `result` (or throws it) and records what it was asked. */
function store(result: SettleResult | Error) {
	const asked: [string, number][] = [];
	return {
		asked,
		async settle(reservation: string, tokens: number): Promise<SettleResult> {
			asked.push([reservation, tokens]);
			if (result instanceof Error) throw result;
			return result;
		},
	};
}

function setup(stores: { primary: ReturnType<typeof store> | null; memory: ReturnType<typeof store> | null }, rides: { full?: boolean } | null = null) {
	const tokens: [string, number][] = [];
	const warnings: [string, Record<string, unknown> | undefined][] = [];
	const log = { info() {}, warn: (message: string, fields?: Record<string, unknown>) => void warnings.push([message, fields]), error() {} };
	const clock = { now: 1_000_000 };
	/** Settles handed over to ride (refused when `full`), and the work each report left to the request's background. */
	const offered: RideRequest[] = [];
	const background: Promise<unknown>[] = [];
	const fakeRides = rides === null ? null : { offer: (request: RideRequest) => (offered.push(request), rides.full !== true) };
	const settlements = new Settlements({ stores, rides: fakeRides, events: { tokens: (kind, count) => void tokens.push([kind, count]) }, log, now: () => clock.now });
	const reportHeader = (reservation: { id: string; store: "upstash" | "memory" }, value: string) =>
		settlements.reportHeader(reservation, value, { waitUntil: (work) => void background.push(work) });
	return { settlements, tokens, warnings, offered, background, reportHeader };
}

describe("Settlements.report: where a reservation is settled", () => {
	it.each([["already_settled"], ["expired"]] as const)("takes memory's %s as the answer: Upstash is asked only for an id memory does not hold", async (status) => {
		const memory = store({ status });
		const primary = store({ status: "unknown" });
		const { settlements, tokens } = setup({ primary, memory });
		expect(await settlements.report("r-1", 10)).toEqual({ status });
		expect(primary.asked).toEqual([]);
		expect(tokens).toEqual([]);
	});

	it("asks Upstash for an id memory does not hold, with the reported tokens", async () => {
		const memory = store({ status: "unknown" });
		const primary = store({ status: "settled", hold: 100, counted: 40 });
		const { settlements, tokens } = setup({ primary, memory });
		expect(await settlements.report("r-2", 40)).toEqual({ status: "settled", hold: 100, counted: 40 });
		expect(memory.asked).toEqual([["r-2", 40]]);
		expect(primary.asked).toEqual([["r-2", 40]]);
		expect(tokens).toEqual([["settled", 40]]);
	});

	it("is unknown with no store at all", async () => {
		const { settlements } = setup({ primary: null, memory: null });
		expect(await settlements.report("r-3", 1)).toEqual({ status: "unknown" });
	});

	it("is unavailable when the store fails, and says why in a warning (no id, no tokens)", async () => {
		const { settlements, warnings } = setup({ primary: store(new ReplayStoreError("timeout", "slow")), memory: store({ status: "unknown" }) });
		expect(await settlements.report("r-4", 1)).toEqual({ status: "unavailable" });
		expect(warnings).toHaveLength(1);
		expect(warnings[0]![1]).toEqual({ error: "timeout", suppressed: 0 });
	});
});

describe("Settlements.report: what is counted", () => {
	it("counts what the store counted (at most the hold) as settled, and the rest above the hold as an overrun, with a warning", async () => {
		const { settlements, tokens, warnings } = setup({ primary: store({ status: "settled", hold: 100, counted: 100 }), memory: null });
		await settlements.report("r-5", 130);
		expect(tokens).toEqual([
			["settled", 100],
			["overrun", 30],
		]);
		expect(warnings.map(([, fields]) => fields)).toEqual([{ hold: 100, reported: 130, suppressed: 0 }]);
	});

	it("a report of exactly the hold is no overrun: no count, no warning", async () => {
		const { settlements, tokens, warnings } = setup({ primary: store({ status: "settled", hold: 100, counted: 100 }), memory: null });
		await settlements.report("r-6", 100);
		expect(tokens).toEqual([["settled", 100]]);
		expect(warnings).toEqual([]);
	});
});

describe("Settlements.reportHeader: an answer's X-Token-Usage, for the reservation its request made", () => {
	const UPSTASH_ID = "svc:2026-12-02:2026-12:" + "a".repeat(32);

	it("held in Upstash: handed over to ride on the client's next claim with its windows and tokens; nothing runs in this request", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 30 });
		const memory = store({ status: "unknown" });
		const { tokens, warnings, offered, background, reportHeader } = setup({ primary, memory }, {});
		reportHeader({ id: UPSTASH_ID, store: "upstash" }, " 30 ");
		expect(offered.map(({ clientId, reservation, tokens: count, day, month }) => ({ clientId, reservation, count, day, month }))).toEqual([
			{ clientId: "svc", reservation: UPSTASH_ID, count: 30, day: "2026-12-02", month: "2026-12" },
		]);
		expect(background).toEqual([]);
		expect([primary.asked, memory.asked, tokens, warnings]).toEqual([[], [], [], []]);
		// What the carrying claim found is counted where it arrives.
		offered[0]!.settled({ status: "settled", hold: 100, counted: 30 });
		expect(tokens).toEqual([["settled", 30]]);
	});

	it("what a ride found is counted when it is told (by the claim that carried it, or the sweeper that sent it alone), an overrun too; Upstash is never asked here", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 100 });
		const { tokens, warnings, offered, reportHeader } = setup({ primary, memory: store({ status: "unknown" }) }, {});
		reportHeader({ id: UPSTASH_ID, store: "upstash" }, "130");
		offered[0]!.settled({ status: "settled", hold: 100, counted: 100 });
		expect(primary.asked).toEqual([]);
		expect(tokens).toEqual([
			["settled", 100],
			["overrun", 30],
		]);
		expect(warnings.map(([, fields]) => fields)).toEqual([{ hold: 100, reported: 130, suppressed: 0 }]);
	});

	it("a ride the store could not settle counts nothing, and says why in a warning", async () => {
		const { tokens, warnings, offered, reportHeader } = setup({ primary: store({ status: "unknown" }), memory: null }, {});
		reportHeader({ id: UPSTASH_ID, store: "upstash" }, "30");
		offered[0]!.settled({ status: "unavailable", error: new ReplayStoreError("timeout", "slow") });
		expect(tokens).toEqual([]);
		expect(warnings.map(([, fields]) => fields)).toEqual([{ error: "timeout", suppressed: 0 }]);
	});

	it.each([
		["the isolate's rides are full", { full: true }],
		["there are no rides (no Upstash limits store)", null],
	] as const)("held in Upstash and %s: sent alone at once, in the request's background", async (_, rides) => {
		const primary = store({ status: "settled", hold: 100, counted: 30 });
		const { tokens, background, reportHeader } = setup({ primary, memory: store({ status: "unknown" }) }, rides);
		reportHeader({ id: UPSTASH_ID, store: "upstash" }, "30");
		expect(background).toHaveLength(1);
		await background[0];
		expect(primary.asked).toEqual([[UPSTASH_ID, 30]]);
		expect(tokens).toEqual([["settled", 30]]);
	});

	it("held in Upstash with an id that names no windows: not handed over, and Upstash's answer (unknown) counts nothing", async () => {
		const primary = store({ status: "unknown" });
		const { tokens, offered, background, reportHeader } = setup({ primary, memory: null }, {});
		reportHeader({ id: "not-an-id", store: "upstash" }, "30");
		expect(offered).toEqual([]);
		await Promise.all(background);
		expect(primary.asked).toEqual([["not-an-id", 30]]);
		expect(tokens).toEqual([]);
	});

	it("held in this isolate's memory: settled there in the background, never handed over, Upstash never asked", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 1 });
		const memory = store({ status: "settled", hold: 100, counted: 30 });
		const { tokens, offered, background, reportHeader } = setup({ primary, memory }, {});
		reportHeader({ id: "svc:-:-:" + "b".repeat(32), store: "memory" }, "30");
		expect(offered).toEqual([]);
		expect(background).toHaveLength(1);
		await background[0];
		expect(memory.asked).toEqual([["svc:-:-:" + "b".repeat(32), 30]]);
		expect(primary.asked).toEqual([]);
		expect(tokens).toEqual([["settled", 30]]);
	});

	it("settles nothing for a value that is not a whole number, and says so in a warning (no value, no id), at most once in 10 s", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 100 });
		const { tokens, warnings, offered, background, reportHeader } = setup({ primary, memory: null }, {});
		for (const value of ["1e3", "-5", "12 tokens", "1000000000000000", ""]) reportHeader({ id: UPSTASH_ID, store: "upstash" }, value);
		expect([offered, background, primary.asked, tokens]).toEqual([[], [], [], []]);
		expect(warnings).toHaveLength(1);
		expect(warnings[0]![0]).toContain("X-Token-Usage");
		expect(warnings[0]![1]).toEqual({ suppressed: 0 });
	});
});

describe("tokenCount: an X-Token-Usage value", () => {
	it.each([
		["0", 0],
		[" 42 ", 42],
		["999999999999999", 999_999_999_999_999],
	])("reads %j as %d", (value, count) => {
		expect(tokenCount(value)).toBe(count);
	});

	it.each([[null], [undefined], [""], ["1000000000000000"], ["-1"], ["1.5"], ["1e3"], ["12 tokens"]])("refuses %j", (value) => {
		expect(tokenCount(value)).toBeNull();
	});
});
