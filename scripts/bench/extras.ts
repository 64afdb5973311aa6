// Figures beside the table: the Upstash round trip, /metrics, the aggregator's capacity, a
// valid client during a flood, the memory store's bound.
import { createHash } from "node:crypto";
import autocannon from "autocannon";
import { GatewayMetrics } from "../../src/metrics/gateway-metrics.ts";
import { INGEST_VERSION, type IngestPayload } from "../../src/metrics/delivery.ts";
import { MemoryReplayStore } from "../../src/claim/memory.ts";
import type { RunningGateway } from "../lib/gateway-runner.ts";
import type { UpstashServer } from "../lib/upstash-server.ts";
import { percentile, sequentialLatency } from "./load.ts";
import { chatBody, signHeaders } from "./requests.ts";
import type { Scenario } from "./scenarios.ts";

export const METRICS_TOKEN = "bench-metrics-token";
export const UPSTASH_TOKEN = "bench-upstash-token";

/** The gateway's own counts, from its /metrics: flushes that succeeded, requests accepted and rejected. */
export async function readCounters(gateway: RunningGateway): Promise<{ flushes: number; accepted: number; rejected: number }> {
	const text = await (await fetch(`${gateway.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).text();
	const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
	return {
		flushes: sum(/^agent_metrics_flushes_total\{outcome="ok"\} (\S+)$/gm),
		accepted: sum(/^agent_chat_requests_total\{auth="ok",mode="real"\} (\S+)$/gm),
		rejected: sum(/^agent_chat_requests_total\{auth="fail",mode="[a-z_]+"\} (\S+)$/gm),
	};
}

export async function measureScrapes(gateway: RunningGateway, count: number): Promise<{ p50Ms: number; p99Ms: number }> {
	const times: number[] = [];
	for (let i = 0; i < count; i++) {
		const started = performance.now();
		const response = await fetch(`${gateway.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
		await response.text();
		times.push(performance.now() - started);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

export interface NeighbourFigures {
	floodRate: number;
	floodRequests: number;
	aloneP50Ms: number;
	duringP50Ms: number;
	aloneP99Ms: number;
	duringP99Ms: number;
}

/** A valid client's latency, one request at a time: alone, and during a bad-signature flood at a fixed rate. */
export async function measureNeighbour(gateway: RunningGateway, valid: Scenario, durationSec: number): Promise<NeighbourFigures> {
	const floodRate = 500;
	const alone = await sequentialLatency(gateway.url, valid, 300);
	let payloadCounter = 0;
	const flood = autocannon({
		url: gateway.url,
		connections: 8,
		overallRate: floodRate,
		duration: Math.max(3, durationSec),
		requests: [
			{
				setupRequest: (request: autocannon.Request) => {
					const payload = chatBody(1024, 2_000_000_000 + payloadCounter++);
					return { ...request, method: "POST", path: "/agent/chat", headers: signHeaders("POST", "/agent/chat", payload, Date.now(), "flood-guess"), body: payload };
				},
			},
		],
	});
	await new Promise((resolve) => setTimeout(resolve, 500));
	const during = await sequentialLatency(gateway.url, valid, 300);
	const result = await flood;
	return { floodRate, floodRequests: result.requests.total, aloneP50Ms: alone.p50Ms, duringP50Ms: during.p50Ms, aloneP99Ms: alone.p99Ms, duringP99Ms: during.p99Ms };
}

/**
 * Many isolates' ingests at once into one aggregator object, each batch as large as an
 * isolate ever sends (every series of the gateway). Called from Node through Miniflare, so
 * the figure includes that hop and is a lower bound of what the object itself takes.
 */
export async function measureIngestCapacity(gateway: RunningGateway): Promise<{ perSec: number; concurrency: number }> {
	const namespace = await gateway.mf.getDurableObjectNamespace("METRICS_AGGREGATOR", "gateway-0");
	const stub = namespace.get(namespace.idFromName("bench-capacity")) as unknown as { ingest(payload: IngestPayload): Promise<unknown> };
	const samples = new GatewayMetrics().primed;
	const concurrency = 16;
	const deadline = performance.now() + 3000;
	let count = 0;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async (_, worker) => {
			for (let seq = 1; performance.now() < deadline; seq++) {
				await stub.ingest({ v: INGEST_VERSION, isolate: `bench-${worker}`, batches: [{ seq, samples, gauges: { agent_replay_store_degraded: 0 } }] });
				count++;
			}
		}),
	);
	return { perSec: count / ((performance.now() - started) / 1000), concurrency };
}

export async function measureUpstashRoundTrip(upstash: UpstashServer): Promise<{ p50Ms: number; p99Ms: number }> {
	const times: number[] = [];
	for (let i = 0; i < 300; i++) {
		const started = performance.now();
		const response = await fetch(upstash.url, {
			method: "POST",
			headers: { Authorization: `Bearer ${UPSTASH_TOKEN}`, "Upstash-Encoding": "base64" },
			body: JSON.stringify(["SET", `bench:rtt:${i}`, "1", "NX", "PX", "60000"]),
		});
		await response.text();
		times.push(performance.now() - started);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

export interface MemoryStoreFigures {
	keys: number;
	bound: number;
	heapBytesPerKey: number;
	storedKeys: number;
	refused: number;
}

/** Heap per key of the memory store (V8, as in workerd), and that the default bound holds under a flood. */
export async function measureMemoryStore(): Promise<MemoryStoreFigures[]> {
	const keys = 1_000_000;
	const results: MemoryStoreFigures[] = [];
	for (const bound of [100_000, keys]) {
		const gc = (globalThis as { gc?: () => void }).gc;
		gc?.();
		const before = process.memoryUsage().heapUsed;
		const store = new MemoryReplayStore(bound, () => 0);
		let refused = 0;
		for (let i = 0; i < keys; i++) {
			// A replay key is the 64-hex signature after the prefix.
			const key = `hmac:replay:${createHash("sha256").update(String(i)).digest("hex")}`;
			store.claim(key, "", 600_000).catch(() => refused++);
		}
		// Let the claims' promises settle, so only the store is left on the heap.
		await new Promise((resolve) => setImmediate(resolve));
		gc?.();
		const after = process.memoryUsage().heapUsed;
		results.push({ keys, bound, storedKeys: store.size, refused, heapBytesPerKey: Math.round((after - before) / Math.max(1, store.size)) });
	}
	return results;
}
