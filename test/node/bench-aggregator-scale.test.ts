import { describe, expect, it } from "vitest";
import { formatAggregatorScale, fullBatch, runAggregatorScale } from "../../scripts/bench/aggregator-scale.ts";

// Not a benchmark: one short run with small numbers, so the harness cannot rot. No timing is asserted.
describe("npm run bench -- --only aggregator-scale (a short smoke run)", () => {
	it("seeds each object to its level, applies every measured ingest, and reports well-formed figures", async () => {
		const report = await runAggregatorScale({ levels: [300, 20], durationSec: 0.3, rounds: 1, concurrency: 4, inObjectIngests: 40, scrapes: 5, log: () => {} });
		expect(report.levels.map((level) => level.isolates)).toEqual([20, 300]);
		expect(report.batchSeries).toBe(fullBatch().series);
		expect(report.batchSeries).toBeGreaterThan(10);
		for (const level of report.levels) {
			expect(level.ingests).toBeGreaterThan(0);
			expect(level.applied).toBe(level.ingests);
			// The isolate's row and the totals row, whatever the isolates seen.
			expect(level.rowsWrittenPerIngest).toBe(2);
			for (const figure of [level.ingestsPerSec, level.msPerIngest, level.inObjectMsPerIngest]) expect(Number.isFinite(figure) && figure > 0).toBe(true);
		}
		expect(report.ratio).toBeCloseTo(report.levels[1]!.ingestsPerSec / report.levels[0]!.ingestsPerSec, 10);
		expect(report.scrape).toMatchObject({ isolates: 300, aggregated: true });
		expect(report.scrape.p50Ms).toBeGreaterThan(0);
		expect(formatAggregatorScale(report)).toMatch(/^\| 300 \| \d+ \| [\d.]+ \| [\d.]+ \| 2\.00 \|$/m);
	});
});
