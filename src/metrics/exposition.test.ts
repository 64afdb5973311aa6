import { describe, expect, it } from "vitest";
import { counter, gauge, histogram } from "./definitions.ts";
import { renderAggregate, renderIsolate, serialize, type RenderedFamilies } from "./exposition.ts";
import { Recorder } from "./gateway-metrics.ts";
import { Registry } from "./registry.ts";

describe("text exposition format 0.0.4", () => {
	it("writes exactly the expected text for a known set of observations", () => {
		const requests = counter("app_requests_total", "Requests by result.", ["result", "code"]);
		const temperature = gauge("app_temperature", "A gauge with a back\\slash and a\nnewline in its help.");
		const latency = histogram("app_latency_seconds", "Latency.", [0.1, 0.5, 1], ["route"]);
		const idle = counter("app_idle_total", "Never incremented.");
		const registry = new Registry([requests, temperature, latency, idle]);
		const recorder = new Recorder();
		recorder.inc(registry.series(requests, { result: "ok", code: "200" }), 3);
		recorder.inc(registry.series(requests, { result: "fail", code: 'quote " back \\ line\nend' }));
		const chat = registry.series(latency, { route: "chat" });
		for (const value of [0.05, 0.1, 0.3, 2]) recorder.observe(chat, value);
		const samples = { ...recorder.totals, app_temperature: { "[]": Number.NaN } };

		expect(serialize(registry.definitions, samples)).toBe(
			[
				"# HELP app_requests_total Requests by result.",
				"# TYPE app_requests_total counter",
				'app_requests_total{code="200",result="ok"} 3',
				'app_requests_total{code="quote \\" back \\\\ line\\nend",result="fail"} 1',
				"# HELP app_temperature A gauge with a back\\\\slash and a\\nnewline in its help.",
				"# TYPE app_temperature gauge",
				"app_temperature NaN",
				"# HELP app_latency_seconds Latency.",
				"# TYPE app_latency_seconds histogram",
				'app_latency_seconds_bucket{route="chat",le="0.1"} 2',
				'app_latency_seconds_bucket{route="chat",le="0.5"} 3',
				'app_latency_seconds_bucket{route="chat",le="1.0"} 3',
				'app_latency_seconds_bucket{route="chat",le="+Inf"} 4',
				'app_latency_seconds_sum{route="chat"} 2.45',
				'app_latency_seconds_count{route="chat"} 4',
				"# HELP app_idle_total Never incremented.",
				"# TYPE app_idle_total counter",
				"app_idle_total 0",
				"",
			].join("\n"),
		);
	});

	it("spells infinities +Inf and -Inf, and adds extra labels to every series", () => {
		const g = gauge("g", "g", ["k"]);
		const registry = new Registry([g]);
		const text = serialize(registry.definitions, { g: { '["a"]': Number.POSITIVE_INFINITY, '["b"]': Number.NEGATIVE_INFINITY } }, [
			["aggregation", "isolate"],
			["isolate", "abc"],
		]);
		expect(text).toBe(
			[
				"# HELP g g",
				"# TYPE g gauge",
				'g{k="a",aggregation="isolate",isolate="abc"} +Inf',
				'g{k="b",aggregation="isolate",isolate="abc"} -Inf',
				"",
			].join("\n"),
		);
	});

	it("writes no series for a labelled family that has none, and the one zero series of an unlabelled one", () => {
		const labelled = counter("labelled_total", "L.", ["k"]);
		const plain = counter("plain_total", "P.");
		expect(serialize([labelled, plain], {})).toBe(
			["# HELP labelled_total L.", "# TYPE labelled_total counter", "# HELP plain_total P.", "# TYPE plain_total counter", "plain_total 0", ""].join("\n"),
		);
	});

	it("escapes every backslash, double quote and newline of a label value, and every backslash and newline of HELP", () => {
		const family = counter("esc_total", "help with \\ two \\ backslashes and\ntwo\nnewlines", ["k"]);
		const registry = new Registry([family]);
		const recorder = new Recorder();
		recorder.inc(registry.series(family, { k: 'two \\ back \\ slashes, two " quotes ", two\nnew\nlines' }));
		expect(serialize(registry.definitions, recorder.totals)).toBe(
			[
				String.raw`# HELP esc_total help with \\ two \\ backslashes and\ntwo\nnewlines`,
				"# TYPE esc_total counter",
				String.raw`esc_total{k="two \\ back \\ slashes, two \" quotes \", two\nnew\nlines"} 1`,
				"",
			].join("\n"),
		);
	});
});

describe("rendering snapshots to text", () => {
	const aggregated = gauge("agg", "Aggregated.");
	const families: RenderedFamilies = {
		definitions: [counter("r_total", "Requests.", ["auth"]), gauge("d", "Degraded isolates."), aggregated],
		primed: { r_total: { '["ok"]': 0, '["fail"]': 0 } },
		aggregatedGauge: aggregated,
	};
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
});
