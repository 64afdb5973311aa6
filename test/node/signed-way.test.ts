import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
/** The section of docs/design.md that lists the way, file by file. */
const SECTION = "## A signed request's way";
/** Issue 18: a signed POST crosses at most this many files of src/ before the origin. */
const MAX_FILES = 12;

/**
 * The files of src/ whose code runs for one signed request of `scheme`, from the Worker's entry
 * to the origin call, as V8's coverage counts them (test/node/helpers/signed-way.ts).
 */
function measuredWay(scheme: "v1" | "v2"): Promise<string[]> {
	return new Promise((done, fail) => {
		// The repository's Node (22), which runs the Worker's TypeScript as it is.
		execFile(resolve(ROOT, "node_modules/.bin/node"), [resolve(ROOT, "test/node/helpers/signed-way.ts"), scheme], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
			if (error !== null) return fail(new Error(`${error.message}\n${stderr}`));
			const files = JSON.parse(stdout.trim().split("\n").at(-1)!) as string[];
			done([...new Set(files)].sort());
		});
	});
}

/** The way as docs/design.md lists it: the numbered steps (v1), and the bulleted files v2 adds. */
function documentedWay(): { v1: string[]; v2Extra: string[] } {
	const design = readFileSync(resolve(ROOT, "docs/design.md"), "utf8");
	const start = design.indexOf(`\n${SECTION}\n`);
	expect(start, `docs/design.md has a section "${SECTION.slice(3)}"`).toBeGreaterThan(-1);
	const end = design.indexOf("\n## ", start + SECTION.length);
	const section = design.slice(start, end === -1 ? undefined : end);
	const listed = (pattern: RegExp) => [...section.matchAll(pattern)].map((match) => match[1]!);
	return { v1: listed(/^\d+\. `(src\/[^`]+)`/gm), v2Extra: listed(/^- `(src\/[^`]+)`/gm) };
}

describe("a signed request's way (docs/design.md)", () => {
	const documented = documentedWay();

	it(`a signed v1 POST runs the code of at most ${MAX_FILES} files of src/ before the origin, exactly those the design lists`, async () => {
		expect(new Set(documented.v1).size).toBe(documented.v1.length);
		expect(documented.v1.length).toBeLessThanOrEqual(MAX_FILES);
		expect(await measuredWay("v1")).toEqual([...documented.v1].sort());
	});

	it("a signed v2 POST runs those files but v1's scheme, and the v2 files the design lists, no other", async () => {
		expect(documented.v2Extra.length).toBeGreaterThan(0);
		expect(documented.v2Extra.filter((file) => documented.v1.includes(file))).toEqual([]);
		const shared = documented.v1.filter((file) => file !== "src/auth/scheme-v1.ts");
		expect(shared).toHaveLength(documented.v1.length - 1);
		expect(await measuredWay("v2")).toEqual([...shared, ...documented.v2Extra].sort());
	});
});
