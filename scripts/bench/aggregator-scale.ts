// The aggregator-scale scenario (issue 11): one metrics Durable Object's ingest rate after
// 100 to 50,000 distinct isolates seen, the rows one ingest writes, and /metrics at the top.
// Self-contained: `npm run bench -- --only aggregator-scale` runs it alone.
import { cpus } from "node:os";
import { GatewayMetrics } from "../../src/metrics/gateway-metrics.ts";
import { INGEST_VERSION, type DeltaBatch, type IngestPayload, type IngestResult } from "../../src/metrics/delivery.ts";
import type { Samples } from "../../src/metrics/samples.ts";
import { bundleWorker } from "../lib/build.ts";
import { startGateway } from "../lib/gateway-runner.ts";

export interface AggregatorScaleOptions {
	/** Distinct isolates each measured object has seen. @default [100, 1000, 10000, 50000] */
	levels: readonly number[];
	/** Seconds of ingests per level per round. */
	durationSec: number;
	/** Rounds over all levels (each starts with another level); each figure is the median. */
	rounds: number;
	/** Concurrent callers, each a busy isolate of its own. */
	concurrency: number;
	/** Ingests per level per round timed inside the object (one call from Node runs them all). */
	inObjectIngests: number;
	/** Sequential `/metrics` scrapes through the gateway at the top level. */
	scrapes: number;
	log: (line: string) => void;
}

export const DEFAULT_AGGREGATOR_SCALE: Omit<AggregatorScaleOptions, "log"> = {
	levels: [100, 1000, 10_000, 50_000],
	durationSec: 3,
	rounds: 3,
	concurrency: 16,
	inObjectIngests: 2000,
	scrapes: 200,
};

export interface AggregatorScaleLevel {
	isolates: number;
	/** Median over the rounds: ingests the object answered per second, `concurrency` callers in workerd (Worker to Durable Object RPC), timed from Node. */
	ingestsPerSec: number;
	/** 1000 / ingestsPerSec. */
	msPerIngest: number;
	/** Median over the rounds: ingests run inside the object, wall time of the one call / count. */
	inObjectMsPerIngest: number;
	/** Rows the object's SQLite writes counted, per measured ingest. */
	rowsWrittenPerIngest: number;
	/** Measured ingests, all applied (a skipped batch would measure nothing). */
	ingests: number;
	applied: number;
}

export interface AggregatorScaleReport {
	machine: { cpus: number; node: string; date: string };
	durationSec: number;
	rounds: number;
	concurrency: number;
	/** Series in each batch: every series of the gateway, each changed. */
	batchSeries: number;
	levels: AggregatorScaleLevel[];
	/** Ingests per second at the most isolates over at the fewest (goal: at least 0.8). */
	ratio: number;
	/** `/metrics` through the gateway (its delta carried in, the aggregate out, rendered) with the most isolates seen. */
	scrape: { isolates: number; p50Ms: number; p99Ms: number; aggregated: boolean };
}

interface ScaleStub {
	ingest(payload: IngestPayload): Promise<IngestResult>;
	seed(count: number): Promise<{ isolates: number }>;
	stats(): Promise<{ rowsWritten: number; isolates: number }>;
	ingestMany(isolates: { id: string; seq: number }[], rounds: number, batch: Omit<DeltaBatch, "seq">): Promise<number>;
}

const METRICS_TOKEN = "bench-metrics-token";

/** Every series of the gateway with a count in it: the largest batch an isolate sends. */
export function fullBatch(): { samples: Samples; series: number } {
	const samples = structuredClone(new GatewayMetrics().primed);
	let series = 0;
	for (const family of Object.values(samples)) {
		for (const [key, value] of Object.entries(family)) {
			series++;
			if (typeof value === "number") family[key] = 1;
			else {
				value.b[0] = 1;
				value.s = 0.01;
				value.c = 1;
			}
		}
	}
	return { samples, series };
}

export async function runAggregatorScale(options: AggregatorScaleOptions): Promise<AggregatorScaleReport> {
	const { log, concurrency } = options;
	const levels = [...options.levels].sort((a, b) => a - b);
	if (levels.length === 0 || levels[0]! < concurrency || !(options.durationSec > 0) || options.rounds < 1) {
		throw new Error(`aggregator-scale: every level needs at least ${concurrency} isolates (the callers), and a positive duration and rounds`);
	}
	log("aggregator-scale: bundling the gateway with a seedable aggregator ...");
	const scriptPath = bundleWorker(".build/bench/aggregator", "scripts/bench/workers/aggregator.ts");
	const gateway = await startGateway(
		{ ENVIRONMENT: "production", ORIGIN_URL: "http://127.0.0.1:9", HMAC_SECRET: "bench-secret-at-least-32-characters-long", METRICS_TOKEN, METRICS_FLUSH_MS: "10000" },
		{ scriptPath },
	);
	try {
		const namespace = await gateway.mf.getDurableObjectNamespace("METRICS_AGGREGATOR", "gateway-0");
		const { samples, series } = fullBatch();
		const batch = { samples, gauges: { agent_replay_store_degraded: 0 } };
		const top = levels.at(-1)!;
		// One object per level, so rounds can alternate between them; the largest is the one
		// the gateway's scrape reads (shard 0).
		const objects = await Promise.all(
			levels.map(async (level) => {
				const name = level === top ? "metrics-0" : `scale-${level}`;
				const stub = namespace.get(namespace.idFromName(name)) as unknown as ScaleStub;
				const busy: { id: string; seq: number }[] = Array.from({ length: concurrency }, () => ({ id: crypto.randomUUID(), seq: 1 }));
				log(`aggregator-scale: seeding ${level} isolates ...`);
				await stub.seed(level - concurrency);
				for (const isolate of busy) await stub.ingest({ v: INGEST_VERSION, isolate: isolate.id, batches: [{ ...batch, seq: isolate.seq++ }] });
				const { isolates } = await stub.stats();
				if (isolates !== level) throw new Error(`aggregator-scale: object holds ${isolates} isolates, not ${level}`);
				return { level, name, stub, busy, rates: [] as number[], inObject: [] as number[], ingests: 0, applied: 0, rows: 0 };
			}),
		);

		for (let round = 0; round < options.rounds; round++) {
			for (let i = 0; i < objects.length; i++) {
				const object = objects[(round + i) % objects.length]!;
				log(`aggregator-scale: round ${round + 1}, ${object.level} isolates ...`);
				const before = (await object.stub.stats()).rowsWritten;
				const started = performance.now();
				const response = await gateway.fetch("/__bench/ingest", {
					method: "POST",
					body: JSON.stringify({ object: object.name, isolates: object.busy, durationMs: options.durationSec * 1000, batch }),
				});
				const driven = (await response.json()) as { count: number; applied: number; skipped: unknown; isolates: { id: string; seq: number }[] };
				if (driven.applied !== driven.count) {
					throw new Error(`aggregator-scale: ${driven.applied} of ${driven.count} ingests applied (first skipped: ${JSON.stringify(driven.skipped)})`);
				}
				const count = driven.count;
				object.applied += driven.applied;
				object.busy = driven.isolates;
				object.rates.push(count / ((performance.now() - started) / 1000));
				object.ingests += count;
				object.rows += (await object.stub.stats()).rowsWritten - before;

				const perIsolate = Math.max(1, Math.round(options.inObjectIngests / concurrency));
				const inStarted = performance.now();
				const applied = await object.stub.ingestMany(object.busy, perIsolate, batch);
				object.inObject.push((performance.now() - inStarted) / (perIsolate * concurrency));
				for (const isolate of object.busy) isolate.seq += perIsolate;
				if (applied !== perIsolate * concurrency) throw new Error(`aggregator-scale: ${applied} of ${perIsolate * concurrency} in-object ingests applied`);
			}
		}

		log(`aggregator-scale: ${options.scrapes} scrapes with ${top} isolates seen ...`);
		const times: number[] = [];
		let aggregated = true;
		for (let i = 0; i < Math.max(1, options.scrapes); i++) {
			const started = performance.now();
			const response = await gateway.fetch("/metrics", { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
			const text = await response.text();
			times.push(performance.now() - started);
			if (response.status !== 200 || !/^agent_metrics_aggregated 1$/m.test(text)) aggregated = false;
		}

		const results: AggregatorScaleLevel[] = objects.map((object) => {
			const ingestsPerSec = median(object.rates);
			return {
				isolates: object.level,
				ingestsPerSec,
				msPerIngest: 1000 / ingestsPerSec,
				inObjectMsPerIngest: median(object.inObject),
				rowsWrittenPerIngest: object.ingests === 0 ? Number.NaN : object.rows / object.ingests,
				ingests: object.ingests,
				applied: object.applied,
			};
		});
		return {
			machine: { cpus: cpus().length, node: process.version, date: new Date().toISOString() },
			durationSec: options.durationSec,
			rounds: options.rounds,
			concurrency,
			batchSeries: series,
			levels: results,
			ratio: results.at(-1)!.ingestsPerSec / results[0]!.ingestsPerSec,
			scrape: { isolates: top, p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99), aggregated },
		};
	} finally {
		await gateway.close();
	}
}

export function formatAggregatorScale(report: AggregatorScaleReport): string {
	const first = report.levels[0]!;
	const last = report.levels.at(-1)!;
	const lines = [
		`Run ${report.machine.date}, ${report.machine.cpus} CPUs, Node ${report.machine.node}; ${report.rounds} rounds of ${report.durationSec} s per level, ${report.concurrency} concurrent callers (busy isolates) in the Worker calling the object by RPC, timed from Node; each batch carries all ${report.batchSeries} series of the gateway.`,
		"",
		"| isolates seen | ingests/s | ms per ingest | in-object ms per ingest | rows written per ingest |",
		"|---:|---:|---:|---:|---:|",
		...report.levels.map(
			(level) =>
				`| ${level.isolates.toLocaleString("en-US")} | ${level.ingestsPerSec.toFixed(0)} | ${level.msPerIngest.toFixed(2)} | ${level.inObjectMsPerIngest.toFixed(3)} | ${level.rowsWrittenPerIngest.toFixed(2)} |`,
		),
		"",
		`Ingests per second at ${last.isolates.toLocaleString("en-US")} isolates over ${first.isolates.toLocaleString("en-US")}: ${report.ratio.toFixed(2)} (goal: at least 0.8).`,
		`/metrics through the gateway with ${report.scrape.isolates.toLocaleString("en-US")} isolates seen: p50 ${report.scrape.p50Ms.toFixed(2)} ms, p99 ${report.scrape.p99Ms.toFixed(2)} ms (goal: p50 under 10 ms)${report.scrape.aggregated ? "" : "; some scrapes were NOT aggregated answers"}.`,
	];
	return `${lines.join("\n")}\n`;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function percentile(values: number[], q: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
