import type { Logger } from "../log.ts";
import type { MetricsAggregator } from "./aggregator.ts";
import { serialize } from "./exposition.ts";
import { metricsAggregated, type GatewayMetrics } from "./gateway-metrics.ts";
import { INGEST_VERSION, type AggregateSnapshot, type DeltaBatch, type IngestPayload } from "./ingest.ts";
import { isEmpty, mergeSamples, type Samples } from "./samples.ts";

export interface MetricsPipelineOptions {
	metrics: GatewayMetrics;
	/** The aggregator binding; without it, every scrape answers with this isolate's totals. */
	namespace: DurableObjectNamespace<MetricsAggregator> | undefined;
	/** At most one ingest per this many milliseconds. @default 10000 (`METRICS_FLUSH_MS`) */
	flushMs: number;
	/** Budget of one aggregator call. @default 1000 (`METRICS_TIMEOUT_MS`) */
	timeoutMs: number;
	/** @default 1 (`METRICS_SHARDS`) */
	shards: number;
	/** This isolate's gauges, sampled into each batch. */
	gauges: () => Record<string, number>;
	log: Logger;
	now?: () => number;
}

export class MetricsTimeoutError extends Error {
	override readonly name = "MetricsTimeoutError";
}

/** The aggregator would not take the batches (an older deploy that does not know their format). */
export class IngestRefused extends Error {
	override readonly name = "IngestRefused";
}

/** Sent batches whose fate is unknown are resent as they are; new events wait while this many are. */
const MAX_UNACKED_BATCHES = 2;

/**
 * Carries one isolate's metric deltas to the aggregator: in the background at most once
 * per `flushMs`, and inside each scrape. A batch keeps its sequence number until the
 * aggregator took it, so a retry never counts twice and a failure loses nothing.
 */
export class MetricsPipeline {
	readonly isolateId = crypto.randomUUID();
	private seq = 0;
	private unacked: DeltaBatch[] = [];
	private lastFlushAt = Number.NEGATIVE_INFINITY;
	/** A background flush is scheduled and has not yet taken the pending delta. */
	private flushWaiting = false;
	/** Calls to the aggregator run one after another, so batches arrive in order. */
	private chain: Promise<unknown> = Promise.resolve();
	private readonly now: () => number;
	private readonly ownShard: number;

	private readonly options: MetricsPipelineOptions;

	constructor(options: MetricsPipelineOptions) {
		this.options = options;
		if (!(options.flushMs > 0) || !(options.timeoutMs > 0)) throw new Error("MetricsPipeline: flushMs and timeoutMs must be positive");
		if (!Number.isInteger(options.shards) || options.shards < 1) throw new Error("MetricsPipeline: shards must be a positive integer");
		this.now = options.now ?? Date.now;
		this.ownShard = shardOf(this.isolateId, options.shards);
	}

	/**
	 * Called after each request: makes sure its events reach the aggregator within
	 * `flushMs`, with at most one ingest per `flushMs`.
	 */
	afterRequest(ctx: Pick<ExecutionContext, "waitUntil">): void {
		if (this.flushWaiting || this.options.namespace === undefined || !this.options.metrics.recorder.hasPending()) return;
		this.flushWaiting = true;
		const delay = Math.max(0, this.lastFlushAt + this.options.flushMs - this.now());
		ctx.waitUntil(sleep(delay).then(() => this.flush()));
	}

	/** Sends the pending delta (and any unacknowledged batches) to this isolate's shard. */
	flush(): Promise<void> {
		const run = this.chain.then(async () => {
			this.flushWaiting = false;
			// A scrape may have carried the delta meanwhile: then there is nothing to send.
			if (this.unacked.length === 0 && !this.options.metrics.recorder.hasPending()) return;
			this.lastFlushAt = this.now();
			const payload = this.seal();
			try {
				const result = await this.withTimeout(this.stub(this.ownShard).ingest(payload));
				if (result.refused !== null) throw new IngestRefused(result.refused);
				this.acknowledge(payload);
				this.options.metrics.flush("ok");
			} catch (error) {
				this.failed(error);
			}
		});
		this.chain = run.catch(() => {});
		return run;
	}

	/** The exposition text: the aggregate of all shards, or this isolate's own totals when that fails. */
	render(): Promise<{ body: string; aggregated: boolean }> {
		const run = this.chain.then(async () => {
			const { metrics } = this.options;
			if (this.options.namespace !== undefined) {
				const payload = this.seal();
				try {
					const snapshots = await this.withTimeout(
						Promise.all(
							Array.from({ length: this.options.shards }, (_, shard): Promise<AggregateSnapshot> =>
								shard === this.ownShard ? this.stub(shard).snapshot(payload) : this.stub(shard).snapshot(),
							),
						),
					);
					const own = snapshots[this.ownShard]!.ingest;
					if (own !== null && own.refused !== null) throw new IngestRefused(own.refused);
					this.acknowledge(payload);
					metrics.flush("ok");
					const totals = structuredClone(metrics.primed);
					const gauges: Record<string, number> = {};
					for (const snapshot of snapshots) {
						mergeSamples(totals, snapshot.totals);
						for (const [name, value] of Object.entries(snapshot.gauges)) gauges[name] = (gauges[name] ?? 0) + value;
					}
					return { body: this.text(totals, gauges, true, []), aggregated: true };
				} catch (error) {
					this.failed(error);
				}
			}
			const totals = mergeSamples(structuredClone(metrics.primed), metrics.recorder.totals);
			const labels: [string, string][] = [
				["aggregation", "isolate"],
				["isolate", this.isolateId],
			];
			return { body: this.text(totals, this.options.gauges(), false, labels), aggregated: false };
		});
		this.chain = run.catch(() => {});
		return run;
	}

	/** Whether this isolate's shard answers within the budget. */
	async reachable(): Promise<boolean> {
		if (this.options.namespace === undefined) return false;
		try {
			await this.withTimeout(this.stub(this.ownShard).ping());
			return true;
		} catch {
			return false;
		}
	}

	private text(totals: Samples, gauges: Record<string, number>, aggregated: boolean, labels: [string, string][]): string {
		const { registry } = this.options.metrics;
		for (const [name, value] of Object.entries(gauges)) (totals[name] ??= {})["[]"] = value;
		const families = registry.definitions.filter((definition) => definition !== metricsAggregated);
		// The aggregation gauge keeps one unlabelled series, so `avg_over_time` reads both answers.
		return (
			serialize(families, totals, labels) + serialize([metricsAggregated], { [metricsAggregated.name]: { "[]": aggregated ? 1 : 0 } })
		);
	}

	/** Moves the pending delta into a new batch, unless too many sent batches await an answer. */
	private seal(): IngestPayload {
		if (this.unacked.length < MAX_UNACKED_BATCHES) {
			const samples = this.options.metrics.recorder.takeDelta();
			if (!isEmpty(samples) || this.unacked.length === 0) {
				this.unacked.push({ seq: ++this.seq, samples, gauges: this.options.gauges() });
			}
		}
		return { v: INGEST_VERSION, isolate: this.isolateId, batches: [...this.unacked] };
	}

	private acknowledge(payload: IngestPayload): void {
		const last = payload.batches.at(-1)?.seq ?? 0;
		this.unacked = this.unacked.filter((batch) => batch.seq > last);
	}

	private failed(error: unknown): void {
		const timeout = error instanceof MetricsTimeoutError;
		this.options.metrics.flush(timeout ? "timeout" : "error");
		this.options.log.warn("metrics aggregator call failed", {
			reason: timeout ? "timeout" : error instanceof Error ? error.name : "error",
			unacked_batches: this.unacked.length,
		});
	}

	private stub(shard: number): DurableObjectStub<MetricsAggregator> {
		const namespace = this.options.namespace!;
		return namespace.get(namespace.idFromName(`metrics-${shard}`));
	}

	private async withTimeout<T>(work: Promise<T>): Promise<T> {
		let timer: ReturnType<typeof setTimeout> | undefined;
		const deadline = new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new MetricsTimeoutError("metrics aggregator did not answer in time")), this.options.timeoutMs);
		});
		try {
			return await Promise.race([work, deadline]);
		} finally {
			if (timer !== undefined) clearTimeout(timer);
		}
	}
}

function shardOf(isolateId: string, shards: number): number {
	let hash = 0;
	for (let i = 0; i < isolateId.length; i++) hash = (hash * 31 + isolateId.charCodeAt(i)) >>> 0;
	return hash % shards;
}

function sleep(milliseconds: number): Promise<void> {
	return milliseconds <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, milliseconds));
}
