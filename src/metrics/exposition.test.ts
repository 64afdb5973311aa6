import { describe, expect, it } from "vitest";
import { counter, gauge, histogram } from "./definitions.ts";
import { serialize } from "./exposition.ts";
import { Recorder, Registry } from "./registry.ts";

describe("metric definitions", () => {
	it("validates names and labels when a metric is defined", () => {
		expect(() => counter("bad-name_total", "x")).toThrow(/not valid/);
		expect(() => counter("requests", "x")).toThrow(/_total/);
		expect(() => gauge("g", "x", ["ok", "ok"])).toThrow(/duplicate/);
		expect(() => gauge("g", "x", ["__reserved"])).toThrow(/not valid/);
		expect(() => gauge("g", "x", ["1st"])).toThrow(/not valid/);
		expect(() => histogram("h", "x", [1, 2], ["le"])).toThrow(/reserved/);
		expect(() => histogram("h", "x", [2, 1])).toThrow(/increase/);
		expect(() => histogram("h", "x", [1, Number.POSITIVE_INFINITY])).toThrow(/finite/);
		expect(() => histogram("h", "x", [])).toThrow(/at least one/);
	});

	it("refuses two families of one name in a registry, and labels that do not match the definition", () => {
		const a = counter("a_total", "a", ["x"]);
		expect(() => new Registry([a, counter("a_total", "again")])).toThrow(/defined twice/);
		const registry = new Registry([a]);
		expect(() => registry.series(a, {})).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(a, { y: "1" })).toThrow(/takes labels \[x\]/);
		expect(() => registry.series(counter("b_total", "b"))).toThrow(/not in this registry/);
	});
});

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

	it("takes deltas: a delta holds only what came since the last one, the totals everything", () => {
		const c = counter("c_total", "c");
		const registry = new Registry([c]);
		const recorder = new Recorder();
		const series = registry.series(c);
		recorder.inc(series);
		expect(recorder.takeDelta()).toEqual({ c_total: { "[]": 1 } });
		expect(recorder.hasPending()).toBe(false);
		recorder.inc(series, 2);
		expect(recorder.takeDelta()).toEqual({ c_total: { "[]": 2 } });
		expect(recorder.totals).toEqual({ c_total: { "[]": 3 } });
	});
});
