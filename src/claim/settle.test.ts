import { describe, expect, it } from "vitest";
import { Settlements, tokenCount } from "./settle.ts";
import { ReplayStoreError, type SettleResult } from "./store.ts";

/** A store that answers `result` (or throws it) and records what it was asked. */
function store(result: SettleResult | Error) {
	const asked: [string, number][] = [];
	const mayRide: boolean[] = [];
	return {
		asked,
		mayRide,
		async settle(reservation: string, tokens: number, ride = false): Promise<SettleResult> {
			asked.push([reservation, tokens]);
			mayRide.push(ride);
			if (result instanceof Error) throw result;
			return result;
		},
	};
}

function setup(stores: { primary: ReturnType<typeof store> | null; memory: ReturnType<typeof store> | null }) {
	const tokens: [string, number][] = [];
	const warnings: [string, Record<string, unknown> | undefined][] = [];
	const log = { info() {}, warn: (message: string, fields?: Record<string, unknown>) => void warnings.push([message, fields]), error() {} };
	const clock = { now: 1_000_000 };
	const settlements = new Settlements({ stores, events: { tokens: (kind, count) => void tokens.push([kind, count]) }, log, now: () => clock.now });
	return { settlements, tokens, warnings };
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

	it("lets Upstash's settle ride on a claim only when the report says nobody waits for it (an answer's header), never memory's", async () => {
		const memory = store({ status: "unknown" });
		const primary = store({ status: "settled", hold: 100, counted: 40 });
		const { settlements } = setup({ primary, memory });
		await settlements.report("r-2", 40, { mayWait: true });
		await settlements.report("r-2", 40);
		await settlements.report("r-2", 40, { mayWait: false });
		expect(primary.mayRide).toEqual([true, false, false]);
		expect(memory.mayRide).toEqual([false, false, false]);
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

describe("Settlements.reportHeader: an answer's X-Token-Usage", () => {
	it("settles a whole number, letting the settle ride on a claim", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 30 });
		const { settlements, warnings } = setup({ primary, memory: null });
		expect(await settlements.reportHeader("r-7", " 30 ")).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(primary.asked).toEqual([["r-7", 30]]);
		expect(primary.mayRide).toEqual([true]);
		expect(warnings).toEqual([]);
	});

	it("settles nothing for a value that is not a whole number, and says so in a warning (no value, no id), at most once in 10 s", async () => {
		const primary = store({ status: "settled", hold: 100, counted: 100 });
		const { settlements, tokens, warnings } = setup({ primary, memory: null });
		for (const value of ["1e3", "-5", "12 tokens", "1000000000000000", ""]) expect(await settlements.reportHeader("r-8", value)).toEqual({ status: "unreadable" });
		expect(primary.asked).toEqual([]);
		expect(tokens).toEqual([]);
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
