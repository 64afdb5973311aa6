import { describe, expect, it } from "vitest";
import { DroppedNames } from "./forward.ts";

/** A DroppedNames on a clock the test moves, and the lines it logged (the names of each). */
function droppedNames() {
	const clock = { now: 1_000_000 };
	const lines: string[][] = [];
	const log = { info: (_message: string, fields?: Record<string, unknown>) => void lines.push(String(fields?.headers).split(", ")), warn() {}, error() {} };
	return { clock, lines, dropped: new DroppedNames(log, () => clock.now) };
}

const names = (count: number, from = 0) => Array.from({ length: count }, (_, i) => `x-name-${from + i}`);

describe("DroppedNames: the dropped request header names, logged once, in bounded lines", () => {
	it("puts at most 20 names in a line; the 21st comes in a later line, when seen again", () => {
		const { clock, lines, dropped } = droppedNames();
		for (const name of names(21)) dropped.note(name);
		dropped.report();
		expect(lines).toEqual([names(20)]);
		clock.now += 10_000;
		dropped.note("x-name-20");
		dropped.report();
		expect(lines[1]).toEqual(["x-name-20"]);
	});

	it("writes a line at most once per 10 s: not at 9 999 ms after the last, at 10 000 ms", () => {
		const { clock, lines, dropped } = droppedNames();
		dropped.note("x-a");
		dropped.report();
		clock.now += 9_999;
		dropped.note("x-b");
		dropped.report();
		expect(lines).toEqual([["x-a"]]);
		clock.now += 1;
		dropped.report();
		expect(lines).toEqual([["x-a"], ["x-b"]]);
	});

	it("cuts a name longer than 64 characters; one of 64 is written whole", () => {
		const { lines, dropped } = droppedNames();
		dropped.note("a".repeat(64));
		dropped.note("b".repeat(65));
		dropped.report();
		expect(lines).toEqual([["a".repeat(64), `${"b".repeat(64)}...`]]);
	});

	it("remembers 512 names: the 513th starts the memory again, so the first is logged again", () => {
		const { clock, lines, dropped } = droppedNames();
		const flush = () => {
			dropped.report();
			clock.now += 10_000;
		};
		for (let i = 0; i < 512; i += 16) {
			for (const name of names(16, i)) dropped.note(name);
			flush();
		}
		// All 512 remembered: none is logged twice.
		dropped.note("x-name-0");
		flush();
		expect(lines.flat()).toHaveLength(512);
		dropped.note("x-name-512");
		dropped.note("x-name-0");
		flush();
		expect(lines.at(-1)).toEqual(["x-name-512", "x-name-0"]);
	});
});
