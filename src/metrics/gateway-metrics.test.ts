import { describe, expect, it } from "vitest";
import { counter, histogram } from "./definitions.ts";
import { authSkew, gatewayRegistry, originDuration, replayStoreDuration } from "./families.ts";
import { GatewayMetrics, Recorder, zeros } from "./gateway-metrics.ts";
import { Registry } from "./registry.ts";

/** The recorded totals of one family, by series key. */
function family(metrics: GatewayMetrics, name: string) {
	return metrics.recorder.totals[name] ?? {};
}

describe("GatewayMetrics", () => {
	it("keeps the bucket bounds the old backend's dashboards use", () => {
		expect(authSkew.buckets).toEqual([0, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000]);
		expect(originDuration.buckets).toEqual([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
		expect(replayStoreDuration.buckets).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1]);
	});

	it("counts secret slots 0 to 2 each under its own label, and ignores a slot beyond", () => {
		const metrics = new GatewayMetrics();
		for (const slot of [0, 1, 1, 2, 2, 2, 3]) metrics.secretSlot(slot, "someone");
		expect(family(metrics, "agent_auth_secret_slot_total")).toEqual({ '["","0"]': 1, '["","1"]': 2, '["","2"]': 3 });
		expect(Object.keys(metrics.primed.agent_auth_secret_slot_total!).sort()).toEqual(['["","0"]', '["","1"]', '["","2"]']);
	});

	it("labels the secret slots of the client ids the operator listed, and only those (primed too)", () => {
		const metrics = new GatewayMetrics(gatewayRegistry, ["mobile", "batch"]);
		metrics.secretSlot(1, "mobile");
		metrics.secretSlot(1, "mobile");
		metrics.secretSlot(0, "batch");
		metrics.secretSlot(1, "Mobile");
		metrics.secretSlot(1, "web");
		expect(family(metrics, "agent_auth_secret_slot_total")).toEqual({ '["mobile","1"]': 2, '["batch","0"]': 1, '["","1"]': 2 });
		expect(Object.keys(metrics.primed.agent_auth_secret_slot_total!)).toHaveLength(9);
		expect(Object.keys(metrics.primed.agent_auth_secret_slot_total!)).toContain('["batch","2"]');
	});

	it("has README's families, in its order, each with its type and (sorted) labels (a counter stays a counter for rate())", () => {
		expect(gatewayRegistry.definitions.map((d) => `${d.name} ${d.type} ${d.labelNames.join(",")}`)).toEqual([
			"agent_chat_requests_total counter auth,mode",
			"agent_chat_replay_attempts_total counter ",
			"agent_auth_skew_milliseconds histogram ",
			"agent_auth_secret_slot_total counter client,slot",
			"agent_auth_scheme_total counter scheme",
			"agent_replay_store_calls_total counter outcome,store",
			"agent_replay_store_duration_seconds histogram store",
			"agent_replay_fallbacks_total counter reason",
			"agent_replay_breaker_opened_total counter ",
			"agent_replay_outage_replays_total counter ",
			"agent_replay_store_degraded gauge ",
			"agent_origin_duration_seconds histogram ",
			"agent_origin_responses_total counter outcome",
			"agent_limit_refusals_total counter client,limit",
			"agent_tokens_total counter kind",
			"agent_metrics_flushes_total counter outcome",
			"agent_metrics_aggregated gauge ",
			"agent_keyring_lookups_total counter result",
		]);
	});

	it("records each event in its own family and series", () => {
		const metrics = new GatewayMetrics();
		metrics.replayAttempt();
		metrics.breakerOpened();
		metrics.breakerOpened();
		metrics.fallback("timeout");
		metrics.fallback("breaker_open");
		metrics.fallback("breaker_open");
		metrics.streamCut("idle");
		metrics.streamCut("idle");
		metrics.streamCut("deadline");
		metrics.response("status_5xx", 0.3);
		metrics.storeCall("memory", "duplicate", 0.002);
		metrics.skew(250);
		metrics.flush("timeout");
		expect(family(metrics, "agent_chat_replay_attempts_total")).toEqual({ "[]": 1 });
		expect(family(metrics, "agent_replay_breaker_opened_total")).toEqual({ "[]": 2 });
		expect(family(metrics, "agent_replay_fallbacks_total")).toEqual({ '["timeout"]': 1, '["breaker_open"]': 2 });
		expect(family(metrics, "agent_origin_responses_total")).toEqual({ '["stream_cut"]': 2, '["stream_deadline"]': 1, '["status_5xx"]': 1 });
		// Only the response with headers has a duration; a cut stream adds none.
		expect(family(metrics, "agent_origin_duration_seconds")).toEqual({ "[]": { b: [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], s: 0.3, c: 1 } });
		// Labels are stored in sorted order: outcome, then store.
		expect(family(metrics, "agent_replay_store_calls_total")).toEqual({ '["duplicate","memory"]': 1 });
		expect(family(metrics, "agent_replay_store_duration_seconds")).toEqual({ '["memory"]': { b: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], s: 0.002, c: 1 } });
		expect(family(metrics, "agent_auth_skew_milliseconds")).toEqual({ "[]": { b: [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], s: 250, c: 1 } });
		expect(family(metrics, "agent_metrics_flushes_total")).toEqual({ '["timeout"]': 1 });
	});

	it("records a skew of more than a day as a day, so a timestamp in a wrong unit cannot push the sum past exact integers", () => {
		const metrics = new GatewayMetrics();
		metrics.skew(1_796_655_060_000_000); // a v2 created sent in milliseconds, read as seconds
		metrics.skew(9_999_999_999_999_999 - 1_796_655_060_000); // the largest v1 X-Timestamp
		metrics.skew(86_400_001);
		metrics.skew(86_400_000);
		metrics.skew(250);
		expect(family(metrics, "agent_auth_skew_milliseconds")).toEqual({ "[]": { b: [0, 0, 1, 0, 0, 0, 0, 0, 0, 4], s: 4 * 86_400_000 + 250, c: 5 } });
	});

	it("counts a limit refusal under a listed client's label, and one the configuration did not list without a label", () => {
		const metrics = new GatewayMetrics(undefined, ["alice"]);
		metrics.limitRefused("rpm", "alice");
		metrics.limitRefused("rpm", "");
		metrics.limitRefused("rpm", "mallory");
		expect(family(metrics, "agent_limit_refusals_total")).toEqual({ '["alice","rpm"]': 1, '["","rpm"]': 2 });
	});

	it("counts tokens by kind, each event by its number of tokens", () => {
		const metrics = new GatewayMetrics();
		metrics.tokens("held", 400);
		metrics.tokens("held", 100);
		metrics.tokens("settled", 73);
		metrics.tokens("expired", 1);
		expect(family(metrics, "agent_tokens_total")).toEqual({ '["held"]': 500, '["settled"]': 73, '["expired"]': 1 });
	});
});

describe("Recorder", () => {
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

	it("observes into per-bucket counts, the first observation starting from an empty histogram", () => {
		const h = histogram("h", "x", [1, 2]);
		const registry = new Registry([h]);
		const recorder = new Recorder();
		const series = registry.series(h);
		for (const value of [0.5, 2, 7]) recorder.observe(series, value);
		expect(recorder.totals).toEqual({ h: { "[]": { b: [1, 1, 1], s: 9.5, c: 3 } } });
	});
});

describe("zeros", () => {
	it("primes a histogram with one bucket per bound plus the +Inf overflow, and a counter at 0", () => {
		const h = histogram("h", "x", [1, 2, 5], ["k"]);
		const c = counter("c_total", "c");
		const registry = new Registry([h, c]);
		expect(zeros([registry.series(h, { k: "a" }), registry.series(c)])).toEqual({
			h: { '["a"]': { b: [0, 0, 0, 0], s: 0, c: 0 } },
			c_total: { "[]": 0 },
		});
	});
});
