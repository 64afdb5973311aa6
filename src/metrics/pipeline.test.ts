import { describe, expect, it } from "vitest";
import type { Logger } from "../log.ts";
import { GatewayMetrics } from "./gateway-metrics.ts";
import type { AggregateSnapshot, IngestPayload, IngestResult } from "./ingest.ts";
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
