import { describe, expect, it } from "vitest";
import { counter, gauge } from "./definitions.ts";
import { renderAggregate, renderIsolate, type RenderedFamilies } from "./render.ts";
import { sumGauges } from "./samples.ts";

const requests = counter("r_total", "Requests.", ["auth"]);
const degraded = gauge("d", "Degraded isolates.");
const aggregated = gauge("agg", "Aggregated.");
const families: RenderedFamilies = {
	definitions: [requests, degraded, aggregated],
	primed: { r_total: { '["ok"]': 0, '["fail"]': 0 } },
	aggregatedGauge: aggregated,
};

describe("rendering snapshots to text", () => {
	it("sums the shards' totals and gauges over the primed zeros, and says it is the aggregate", () => {
		const text = renderAggregate(families, [
			{ totals: { r_total: { '["ok"]': 2 } }, gauges: { d: 1 } },
			{ totals: { r_total: { '["ok"]': 3, '["fail"]': 1 } }, gauges: { d: 2 } },
		]);
		expect(text).toBe(
			[
				"# HELP r_total Requests.",
				"# TYPE r_total counter",
				'r_total{auth="fail"} 1',
				'r_total{auth="ok"} 5',
				"# HELP d Degraded isolates.",
				"# TYPE d gauge",
				"d 3",
				"# HELP agg Aggregated.",
				"# TYPE agg gauge",
				"agg 1",
				"",
			].join("\n"),
		);
	});

	it("labels the isolate's own totals with where they came from, except the aggregation gauge, which reads 0", () => {
		const text = renderIsolate(families, { r_total: { '["ok"]': 4 } }, { d: 1 }, "iso-1");
		expect(text).toBe(
			[
				"# HELP r_total Requests.",
				"# TYPE r_total counter",
				'r_total{auth="fail",aggregation="isolate",isolate="iso-1"} 0',
				'r_total{auth="ok",aggregation="isolate",isolate="iso-1"} 4',
				"# HELP d Degraded isolates.",
				"# TYPE d gauge",
				'd{aggregation="isolate",isolate="iso-1"} 1',
				"# HELP agg Aggregated.",
				"# TYPE agg gauge",
				"agg 0",
				"",
			].join("\n"),
		);
	});

	it("leaves the primed zeros untouched for the next scrape", () => {
		renderAggregate(families, [{ totals: { r_total: { '["ok"]': 9 } }, gauges: {} }]);
		expect(families.primed).toEqual({ r_total: { '["ok"]': 0, '["fail"]': 0 } });
	});

	it("sums gauges by name", () => {
		expect(sumGauges([{ a: 1, b: 2 }, { a: 3 }, {}])).toEqual({ a: 4, b: 2 });
	});
});
