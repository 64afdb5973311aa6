import client from "prom-client";
import { describe, expect, it } from "vitest";
import { counter, gauge, histogram } from "../../src/metrics/definitions.ts";
import { serialize } from "../../src/metrics/exposition.ts";
import { Recorder } from "../../src/metrics/gateway-metrics.ts";
import { Registry } from "../../src/metrics/registry.ts";
import { parseExposition, type Family } from "../fixtures/exposition.ts";

/** Samples as comparable rows: name, sorted labels (le as a number), value. */
function rows(families: Map<string, Family>): string[] {
	const out: string[] = [];
	for (const family of families.values()) {
		for (const sample of family.samples) {
			const labels = Object.entries(sample.labels)
				.map(([key, value]) => [key, key === "le" ? String(Number(value === "+Inf" ? Infinity : value)) : value])
				.sort();
			out.push(`${family.type} ${sample.name} ${JSON.stringify(labels)} ${sample.value}`);
		}
	}
	return out.sort();
}

describe("our exposition against prom-client (a test-only oracle)", () => {
	it("renders the same observations to the same samples", async () => {
		const observations = {
			requests: [
				[{ auth: "ok", mode: "real" }, 5],
				[{ auth: "fail", mode: 'we"ird\\mode\nx' }, 2],
			] as const,
			skew: [0, 0, 99, 100, 101, 4999, 250_000, 300_000, 300_001, 1e9],
			temperature: -3.5,
		};
		const buckets = [0, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000];

		const oracle = new client.Registry();
		const oracleRequests = new client.Counter({ name: "agent_chat_requests_total", help: "Requests.", labelNames: ["auth", "mode"], registers: [oracle] });
		const oracleSkew = new client.Histogram({ name: "agent_auth_skew_milliseconds", help: "Skew.", buckets, registers: [oracle] });
		const oracleTemperature = new client.Gauge({ name: "temperature", help: "A gauge.", registers: [oracle] });

		const requests = counter("agent_chat_requests_total", "Requests.", ["auth", "mode"]);
		const skew = histogram("agent_auth_skew_milliseconds", "Skew.", buckets);
		const temperature = gauge("temperature", "A gauge.");
		const registry = new Registry([requests, skew, temperature]);
		const recorder = new Recorder();

		for (const [labels, count] of observations.requests) {
			oracleRequests.inc({ ...labels }, count);
			recorder.inc(registry.series(requests, labels), count);
		}
		for (const value of observations.skew) {
			oracleSkew.observe(value);
			recorder.observe(registry.series(skew), value);
		}
		oracleTemperature.set(observations.temperature);
		const samples = { ...recorder.totals, temperature: { "[]": observations.temperature } };

		const ours = parseExposition(serialize(registry.definitions, samples));
		const theirs = parseExposition(await oracle.metrics());
		expect(rows(ours)).toEqual(rows(theirs));
		expect(rows(ours).length).toBeGreaterThan(12);
	});

	it("the reader used by these tests refuses what promtool lets through", () => {
		const histogramText = (lines: string[]) => ["# HELP h h", "# TYPE h histogram", ...lines, ""].join("\n");
		expect(() => parseExposition(histogramText(['h_bucket{le="1.0"} 2', 'h_bucket{le="+Inf"} 1', "h_sum 1", "h_count 1"]))).toThrow(/not cumulative/);
		expect(() => parseExposition(histogramText(['h_bucket{le="1.0"} 1', 'h_bucket{le="+Inf"} 2', "h_sum 1", "h_count 3"]))).toThrow(/differs from _count/);
		expect(() => parseExposition(histogramText(['h_bucket{le="2.0"} 1', 'h_bucket{le="1.0"} 1', 'h_bucket{le="+Inf"} 1', "h_sum 1", "h_count 1"]))).toThrow(/not increasing/);
		expect(() => parseExposition(["# HELP c c", "# TYPE c counter", "c 1", "c 2", ""].join("\n"))).toThrow(/duplicate series/);
		expect(() => parseExposition(["# HELP a a", "# TYPE a counter", "# HELP b b", "# TYPE b counter", "a 1", ""].join("\n"))).toThrow(/outside its family/);
	});
});
