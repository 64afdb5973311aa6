import { describe, expect, it, vi } from "vitest";
import type { Logger } from "../log.ts";
import type { AggregateSnapshot, IngestPayload, IngestResult } from "./delivery.ts";
import { GatewayMetrics } from "./gateway-metrics.ts";
import { MetricsPipeline, type AggregatorClient } from "./pipeline.ts";
import { mergeSamples, type Samples } from "./samples.ts";

const silent: Logger = { info() {}, warn() {}, error() {} };

/** An aggregator in memory with the real one's dedupe rule; `mode` scripts its faults. */
class FakeAggregator implements AggregatorClient {
	mode: "up" | "down" | "old_version" = "up";
	readonly totals: Samples = {};
	readonly payloads: IngestPayload[] = [];
	private readonly lastSeq = new Map<string, number>();

	async ingest(payload: IngestPayload): Promise<IngestResult> {
		this.payloads.push(structuredClone(payload));
		if (this.mode === "down") throw new Error("aggregator down");
		if (this.mode === "old_version") return { applied: 0, refused: "unsupported_version" };
		let applied = 0;
		for (const batch of payload.batches) {
			if (batch.seq <= (this.lastSeq.get(payload.isolate) ?? 0)) continue;
			mergeSamples(this.totals, batch.samples);
			this.lastSeq.set(payload.isolate, batch.seq);
			applied++;
		}
		return { applied, refused: null };
	}

	async snapshot(payload?: IngestPayload): Promise<AggregateSnapshot> {
		const ingest = payload === undefined ? null : await this.ingest(payload);
		return { ingest, totals: structuredClone(this.totals), gauges: {} };
	}

	async ping(): Promise<unknown> {
		return {};
	}
}

function pipeline(aggregator: FakeAggregator) {
	const metrics = new GatewayMetrics();
	const pipe = new MetricsPipeline({
		metrics,
		aggregator: () => aggregator,
		flushMs: 1000,
		timeoutMs: 1000,
		shards: 1,
		gauges: () => ({}),
		log: silent,
		now: () => 1_763_000_000_000,
	});
	return { metrics, pipe };
}

const OK_REAL = 'agent_chat_requests_total{auth="ok",mode="real"}';
const okReal = (text: string) => Number(new RegExp(`^${OK_REAL.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
const isolateOkReal = (text: string) => Number(/^agent_chat_requests_total\{auth="ok",mode="real",aggregation="isolate",isolate="[^"]+"\} (\S+)$/m.exec(text)?.[1]);

describe("MetricsPipeline", () => {
	it("an aggregator of an older deploy (unsupported_version): scrapes answer the isolate's own totals, and what was held meanwhile counts once it accepts", async () => {
		const aggregator = new FakeAggregator();
		aggregator.mode = "old_version";
		const { metrics, pipe } = pipeline(aggregator);
		for (let i = 0; i < 3; i++) metrics.outcome("ok", "real");
		const refused = await pipe.render();
		expect(refused.aggregated).toBe(false);
		expect(isolateOkReal(refused.body)).toBe(3);
		expect(refused.body).toContain("agent_metrics_aggregated 0\n");
		for (let i = 0; i < 2; i++) metrics.outcome("ok", "real");
		await pipe.flush();
		metrics.outcome("ok", "real");
		expect(isolateOkReal((await pipe.render()).body)).toBe(6);

		aggregator.mode = "up";
		const accepted = await pipe.render();
		expect(accepted.aggregated).toBe(true);
		expect(accepted.body).toContain("agent_metrics_aggregated 1\n");
		expect(okReal(accepted.body)).toBe(6);
		// Nothing is counted twice by later scrapes and flushes.
		await pipe.flush();
		expect(okReal((await pipe.render()).body)).toBe(6);
	});

	it("with the aggregator down, no ingest carries more than 2 batches, and every event counts once after it recovers", async () => {
		const aggregator = new FakeAggregator();
		aggregator.mode = "down";
		const { metrics, pipe } = pipeline(aggregator);
		for (let round = 0; round < 8; round++) {
			metrics.outcome("ok", "real");
			await pipe.flush();
		}
		expect(aggregator.payloads.length).toBe(8);
		expect(Math.max(...aggregator.payloads.map((p) => p.batches.length))).toBe(2);

		aggregator.mode = "up";
		await pipe.flush();
		await pipe.flush();
		expect(okReal((await pipe.render()).body)).toBe(8);
	});
});

describe("MetricsPipeline bookkeeping", () => {
	const flushes = (text: string, outcome: string) =>
		Number(new RegExp(`^agent_metrics_flushes_total\\{outcome="${outcome}"(?:,[^}]*)?\\} (\\S+)$`, "m").exec(text)?.[1]);

	it("a successful scrape acknowledges what it carried: the next flush sends only the new batch", async () => {
		const aggregator = new FakeAggregator();
		const { metrics, pipe } = pipeline(aggregator);
		metrics.outcome("ok", "real");
		expect((await pipe.render()).aggregated).toBe(true);
		metrics.outcome("ok", "real");
		await pipe.flush();
		expect(aggregator.payloads.map((payload) => payload.batches.map((batch) => batch.seq))).toEqual([[1], [2]]);
		expect(okReal((await pipe.render()).body)).toBe(2);
	});

	it("a successful flush acknowledges what it carried: the next flush sends only the new batch", async () => {
		const aggregator = new FakeAggregator();
		const { metrics, pipe } = pipeline(aggregator);
		metrics.outcome("ok", "real");
		await pipe.flush();
		metrics.outcome("ok", "real");
		await pipe.flush();
		expect(aggregator.payloads.map((payload) => payload.batches.map((batch) => batch.seq))).toEqual([[1], [2]]);
	});

	it("counts a refused ingest as an error, never as ok, and keeps its batch", async () => {
		const aggregator = new FakeAggregator();
		aggregator.mode = "old_version";
		const { metrics, pipe } = pipeline(aggregator);
		metrics.outcome("ok", "real");
		await pipe.flush();
		aggregator.mode = "down";
		const text = (await pipe.render()).body;
		expect(flushes(text, "ok")).toBe(0);
		expect(flushes(text, "error")).toBe(2);
		expect(aggregator.payloads.map((payload) => payload.batches.map((batch) => batch.seq))).toEqual([[1], [1, 2]]);
	});

	it("counts an aggregator that does not answer within timeoutMs as a timeout", async () => {
		const aggregator = new FakeAggregator();
		aggregator.ingest = () => new Promise<never>(() => {});
		const metrics = new GatewayMetrics();
		const pipe = new MetricsPipeline({ metrics, aggregator: () => aggregator, flushMs: 1000, timeoutMs: 5, shards: 1, gauges: () => ({}), log: silent });
		metrics.outcome("ok", "real");
		await pipe.flush();
		aggregator.snapshot = () => Promise.reject(new Error("down"));
		const text = (await pipe.render()).body;
		expect(flushes(text, "timeout")).toBe(1);
		expect(flushes(text, "error")).toBe(1);
	});

	it("is reachable only when its shard answers the ping", async () => {
		const aggregator = new FakeAggregator();
		const { pipe } = pipeline(aggregator);
		expect(await pipe.reachable()).toBe(true);
		aggregator.ping = () => Promise.reject(new Error("down"));
		expect(await pipe.reachable()).toBe(false);
		const without = new MetricsPipeline({ metrics: new GatewayMetrics(), aggregator: undefined, flushMs: 1, timeoutMs: 1, shards: 1, gauges: () => ({}), log: silent });
		expect(await without.reachable()).toBe(false);
	});

	it("refuses bad options when it is built", () => {
		const base = { metrics: new GatewayMetrics(), aggregator: undefined, flushMs: 1000, timeoutMs: 1000, shards: 1, gauges: () => ({}), log: silent };
		expect(() => new MetricsPipeline({ ...base, shards: 0 })).toThrow(/shards/);
		expect(() => new MetricsPipeline({ ...base, shards: 1.5 })).toThrow(/shards/);
		expect(() => new MetricsPipeline({ ...base, flushMs: 0 })).toThrow(/positive/);
		expect(() => new MetricsPipeline({ ...base, timeoutMs: 0 })).toThrow(/positive/);
	});

	it("afterRequest: the first flush goes at once, the next waits flushMs after it, and one is scheduled at a time", async () => {
		vi.useFakeTimers();
		try {
			const aggregator = new FakeAggregator();
			const clock = { now: 1_763_000_000_000 };
			const metrics = new GatewayMetrics();
			const pipe = new MetricsPipeline({ metrics, aggregator: () => aggregator, flushMs: 1000, timeoutMs: 60_000, shards: 1, gauges: () => ({}), log: silent, now: () => clock.now });
			const waiting: Promise<unknown>[] = [];
			const ctx = { waitUntil: (promise: Promise<unknown>) => void waiting.push(promise) };
			pipe.afterRequest(ctx);
			expect(waiting).toHaveLength(0); // nothing recorded: nothing to send
			metrics.outcome("ok", "real");
			pipe.afterRequest(ctx);
			pipe.afterRequest(ctx);
			expect(waiting).toHaveLength(1);
			await Promise.all(waiting.splice(0));
			expect(aggregator.payloads).toHaveLength(1);

			clock.now += 400;
			metrics.outcome("ok", "real");
			pipe.afterRequest(ctx);
			expect(waiting).toHaveLength(1);
			await vi.advanceTimersByTimeAsync(599);
			expect(aggregator.payloads).toHaveLength(1);
			await vi.advanceTimersByTimeAsync(1);
			await Promise.all(waiting.splice(0));
			expect(aggregator.payloads).toHaveLength(2);
			// Once that flush ran, the next request schedules another.
			metrics.outcome("ok", "real");
			pipe.afterRequest(ctx);
			expect(waiting).toHaveLength(1);
		} finally {
			vi.useRealTimers();
		}
	});
});
