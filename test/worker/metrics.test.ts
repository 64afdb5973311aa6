import { env as bindings } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env.ts";
import type { MetricsAggregator } from "../../src/metrics/aggregator.ts";
import { errorBody, harness, sampleValue, scrape, signedRequest } from "./harness.ts";

const real = (bindings as Env).METRICS_AGGREGATOR!;
const NOW = 1_763_000_000_000;

/**
 * The real aggregator namespace, with calls counted and faults on demand: `down` fails
 * every call; `lose_answer` applies the call, then fails it (the answer was lost).
 */
class FlakyNamespace {
	mode: "up" | "down" | "lose_answer" = "up";
	readonly calls: string[] = [];
	/** The object names that received an ingest. */
	readonly ingestedBy = new Set<string>();
	private lastName = "";
	private readonly prefix: string;
	constructor(prefix: string) {
		this.prefix = prefix;
	}

	idFromName(name: string) {
		this.lastName = name;
		return real.idFromName(`${this.prefix}/${name}`);
	}

	get(id: DurableObjectId) {
		const stub = real.get(id);
		const name = this.lastName;
		const call =
			<A extends unknown[], R>(label: string, method: (...args: A) => Promise<R>) =>
			async (...args: A): Promise<R> => {
				this.calls.push(label);
				if (label === "ingest") this.ingestedBy.add(name);
				if (this.mode === "down") throw new Error("Durable Object unavailable");
				const result = await method(...args);
				if (this.mode === "lose_answer") throw new Error("connection lost after the call");
				return result;
			};
		return {
			ingest: call("ingest", (payload: Parameters<MetricsAggregator["ingest"]>[0]) => stub.ingest(payload)),
			snapshot: call("snapshot", (payload?: Parameters<MetricsAggregator["snapshot"]>[0]) => stub.snapshot(payload)),
			ping: call("ping", () => stub.ping()),
		};
	}

	binding(): Env["METRICS_AGGREGATOR"] {
		return this as unknown as Env["METRICS_AGGREGATOR"];
	}
}

async function okRequests(text: string): Promise<number> {
	return sampleValue(text, "agent_chat_requests_total", { auth: "ok", mode: "real" });
}

describe("/metrics", () => {
	it("shows every series the gateway can emit at zero before the first request (primed)", async () => {
		const text = await scrape(harness());
		for (const mode of ["missing_headers", "invalid_client_id", "invalid_timestamp", "invalid_path", "body_not_allowed", "body_too_large", "config_error", "bad_signature", "unknown_client", "clock_skew", "replay", "replay_store_unavailable"]) {
			expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode }), mode).toBe(0);
		}
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "ok", mode: "real" })).toBe(0);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "bypass", mode: "stub" })).toBe(0);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "bypass", mode: "echo" })).toBe(0);
		expect(sampleValue(text, "agent_chat_replay_attempts_total")).toBe(0);
		expect(sampleValue(text, "agent_auth_skew_milliseconds_bucket", { le: "+Inf" })).toBe(0);
		expect(sampleValue(text, "agent_auth_skew_milliseconds_count")).toBe(0);
	});

	it("requires the metrics token when one is set: 401 without or with a wrong one, 200 with it, and rotation works", async () => {
		const h = harness({ METRICS_TOKEN: "new-token,old-token" });
		for (const authorization of [undefined, "Bearer wrong", "Basic new-token", "Bearer new-token extra"]) {
			const response = await h.fetch(new Request("https://gateway.test/metrics", { headers: authorization ? { Authorization: authorization } : {} }));
			expect(response.status, String(authorization)).toBe(401);
			expect((await errorBody(response)).code).toBe("unauthorized");
		}
		for (const token of ["new-token", "old-token"]) {
			const response = await h.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: `Bearer ${token}` } }));
			expect(response.status).toBe(200);
			expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
		}
	});

	it("refuses to answer in production without a METRICS_TOKEN (every anonymous scrape would be a billed call)", async () => {
		const h = harness({ METRICS_TOKEN: "" });
		const response = await h.fetch(new Request("https://gateway.test/metrics"));
		expect(response.status).toBe(500);
		expect((await errorBody(response)).detail).toContain("METRICS_TOKEN");
	});

	it("answers from the aggregate, with the pending delta of the scraping isolate carried in the scrape", async () => {
		const namespace = new FlakyNamespace(crypto.randomUUID());
		const h = harness({ METRICS_FLUSH_MS: "25000" }, { aggregator: namespace.binding() });
		// The first request flushes at once; the next two wait for the interval, so only the scrape carries them.
		for (let i = 0; i < 3; i++) await h.fetch(await signedRequest({ timestamp: NOW + i }), { wait: i === 0 });
		const text = await scrape(h);
		expect(await okRequests(text)).toBe(3);
		expect(sampleValue(text, "agent_metrics_aggregated")).toBe(1);
		expect(text).not.toContain('aggregation="isolate"');
		expect(namespace.calls).toEqual(["ingest", "snapshot"]);
	});
});

describe("the flush to the aggregator", () => {
	it("costs one ingest for many requests in one interval, and delivers the last events without a further request", async () => {
		const namespace = new FlakyNamespace(crypto.randomUUID());
		const h = harness({ METRICS_FLUSH_MS: "1000" }, { aggregator: namespace.binding() });
		const responses = await Promise.all(
			Array.from({ length: 50 }, async (_, i) => h.fetch(await signedRequest({ timestamp: NOW + i }), { wait: false })),
		);
		expect(responses.every((response) => response.status === 200)).toBe(true);
		await h.settle();
		// One flush at the first request, one at the end of the interval with all the rest.
		expect(namespace.calls.filter((call) => call === "ingest").length).toBeLessThanOrEqual(2);
		const snapshot = await real.get(namespace.idFromName("metrics-0")).snapshot();
		expect(snapshot.totals.agent_chat_requests_total?.['["ok","real"]']).toBe(50);
	});

	it("a failing aggregator: /metrics answers this isolate's totals with its labels and the gauge at 0; after recovery every event counts once", async () => {
		const namespace = new FlakyNamespace(crypto.randomUUID());
		const h = harness({ METRICS_FLUSH_MS: "100", METRICS_TIMEOUT_MS: "200" }, { aggregator: namespace.binding() });
		namespace.mode = "down";
		for (let i = 0; i < 4; i++) await h.fetch(await signedRequest({ timestamp: NOW + i }));
		const fallback = await scrape(h);
		expect(sampleValue(fallback, "agent_metrics_aggregated")).toBe(0);
		expect(fallback).toMatch(/^agent_chat_requests_total\{auth="ok",mode="real",aggregation="isolate",isolate="[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\} 4$/m);
		expect(fallback).toMatch(/^agent_metrics_aggregated 0$/m);

		// The aggregator applies the next call but its answer is lost: the batch is resent and counted once.
		namespace.mode = "lose_answer";
		await h.fetch(await signedRequest({ timestamp: NOW + 10 }));
		namespace.mode = "up";
		await h.fetch(await signedRequest({ timestamp: NOW + 11 }));
		const recovered = await scrape(h);
		expect(sampleValue(recovered, "agent_metrics_aggregated")).toBe(1);
		expect(await okRequests(recovered)).toBe(6);
		expect(sampleValue(recovered, "agent_metrics_flushes_total", { outcome: "error" })).toBeGreaterThanOrEqual(2);
	});

	it("under load, with the aggregator failing, losing answers and recovering: /metrics always answers, and every event counts exactly once", async () => {
		const namespace = new FlakyNamespace(crypto.randomUUID());
		const h = harness({ METRICS_FLUSH_MS: "100", METRICS_TIMEOUT_MS: "200" }, { aggregator: namespace.binding() });
		const phases: FlakyNamespace["mode"][] = ["up", "down", "lose_answer", "down", "up", "lose_answer", "up"];
		let sent = 0;
		const scrapes: number[] = [];
		for (const mode of phases) {
			namespace.mode = mode;
			const wave = await Promise.all(
				Array.from({ length: 60 }, async () => h.fetch(await signedRequest({ timestamp: NOW + sent++ }), { wait: false })),
			);
			expect(wave.every((response) => response.status === 200)).toBe(true);
			const scrape = await h.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer metrics-token" } }));
			expect(scrape.status).toBe(200);
			scrapes.push(sampleValue(await scrape.text(), "agent_metrics_aggregated"));
			await new Promise((resolve) => setTimeout(resolve, 120));
		}
		namespace.mode = "up";
		await h.settle();
		await new Promise((resolve) => setTimeout(resolve, 150));
		const final = await scrape(h);
		expect(scrapes).toContain(0);
		expect(scrapes).toContain(1);
		expect(sampleValue(final, "agent_metrics_aggregated")).toBe(1);
		expect(await okRequests(final)).toBe(sent);
		expect(sampleValue(final, "agent_auth_skew_milliseconds_count")).toBe(sent);
	});

	it("METRICS_SHARDS spreads the isolates' ingests over several objects, and a scrape sums them all", async () => {
		const namespace = new FlakyNamespace(crypto.randomUUID());
		const isolates = Array.from({ length: 12 }, () => harness({ METRICS_SHARDS: "3", METRICS_FLUSH_MS: "25000" }, { aggregator: namespace.binding() }));
		for (const [i, isolate] of isolates.entries()) {
			expect((await isolate.fetch(await signedRequest({ timestamp: NOW + i }))).status).toBe(200);
		}
		// Each isolate flushed its first request at once, to the shard its id falls in.
		expect(namespace.calls.filter((call) => call === "ingest")).toHaveLength(12);
		expect(namespace.ingestedBy.size).toBeGreaterThan(1);
		expect([...namespace.ingestedBy].every((name) => /^metrics-[0-2]$/.test(name))).toBe(true);
		// Not waiting for the scrape's background work: its next flush is 25 s away.
		const response = await isolates[0]!.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer metrics-token" } }), { wait: false });
		const text = await response.text();
		expect(sampleValue(text, "agent_metrics_aggregated")).toBe(1);
		expect(await okRequests(text)).toBe(12);
	});
});
