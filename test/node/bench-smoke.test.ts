import { describe, expect, it } from "vitest";
import { formatReport, runBench } from "../../scripts/lib/bench.ts";
import { available } from "./helpers/services.ts";

// Not a benchmark: one short run, so the harness cannot rot. No timing is asserted.
describe.skipIf(!available("redis-server", "redis-server"))("npm run bench (a short smoke run)", () => {
	it("produces well-formed figures, and exactly one Upstash call per accepted request, none per rejected one", async () => {
		const report = await runBench({
			durationSec: 1,
			rounds: 1,
			connections: 4,
			scenarios: ["upstash-1k", "rejected-flood"],
			memoryStore: false,
			pinCpus: false,
			scrapes: 0,
			log: () => {},
		});
		expect(report.scenarios.map((s) => s.name)).toEqual(["upstash-1k", "rejected-flood"]);
		for (const scenario of report.scenarios) {
			expect(scenario.requests).toBeGreaterThan(0);
			for (const figure of [scenario.requestsPerSec, scenario.latencyP50Ms, scenario.latencyP99Ms, scenario.loadedP99Ms]) {
				expect(Number.isFinite(figure) && figure > 0).toBe(true);
			}
			expect(scenario.ingests!.count).toBeLessThanOrEqual(scenario.ingests!.bound);
		}
		const [accepted, rejected] = report.scenarios;
		expect(Object.keys(accepted!.statusCounts)).toEqual(["200"]);
		expect(accepted!.upstashCalls!.requests).toBeGreaterThan(0);
		expect(accepted!.upstashCalls!.calls).toBe(accepted!.upstashCalls!.requests);
		expect(rejected!.upstashCalls!.requests).toBeGreaterThan(0);
		expect(rejected!.upstashCalls!.calls).toBe(0);
		expect(Object.keys(rejected!.statusCounts).sort()).toEqual(["401", "403", "408"]);
		expect(report.upstashRoundTrip!.p50Ms).toBeGreaterThan(0);
		expect(formatReport(report)).toMatch(/\| upstash-1k \| \d+ \|/);
	});
});
