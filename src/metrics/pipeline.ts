import type { Logger } from "../log.ts";
import type { MetricsAggregator } from "./aggregator.ts";
import { BatchQueue, type AggregateSnapshot, type IngestPayload, type IngestResult } from "./delivery.ts";
import { metricsAggregated } from "./families.ts";
import type { GatewayMetrics } from "./gateway-metrics.ts";
import { renderAggregate, renderIsolate, type RenderedFamilies } from "./exposition.ts";

export interface MetricsPipelineOptions {
	metrics: GatewayMetrics;
	/** The aggregator's shards; without them, every scrape answers with this isolate's totals. */
	aggregator: ((shard: number) => AggregatorClient) | undefined;
	/** At most one ingest per this many milliseconds (the gateway passes `METRICS_FLUSH_MS`). */
	flushMs: number;
	/** Budget of one aggregator call (the gateway passes `METRICS_TIMEOUT_MS`). */
	timeoutMs: number;
	/** How many aggregator objects share the ingest; a scrape sums them (the gateway passes `METRICS_SHARDS`). */
	shards: number;
	/** This isolate's gauges, sampled into each batch. */
	gauges: () => Record<string, number>;
	log: Logger;
	/** @default Date.now */
	now?: () => number;
}

/** The calls the pipeline makes on one aggregator shard: a Durable Object stub has them as RPC methods. */
export interface AggregatorClient {
	ingest(payload: IngestPayload): Promise<IngestResult>;
	snapshot(payload?: IngestPayload): Promise<AggregateSnapshot>;
	ping(): Promise<unknown>;
}

/** The shards of the `MetricsAggregator` binding, by index. */
export function aggregatorShards(namespace: DurableObjectNamespace<MetricsAggregator> | undefined) {
	if (namespace === undefined) return undefined;
	return (shard: number): AggregatorClient => namespace.get(namespace.idFromName(`metrics-${shard}`));
}

export class MetricsTimeoutError extends Error {
	override readonly name = "MetricsTimeoutError";
}

/** The aggregator would not take the batches (an older deploy that does not know their format). */
export class IngestRefused extends Error {
	override readonly name = "IngestRefused";
}

/**
 * Carries one isolate's metric deltas to the aggregator: in the background at most once
 * per `flushMs`, and inside each scrape. A batch keeps its sequence number until the
 * aggregator took it, so a retry never counts twice and a failure loses nothing.
 */
export class MetricsPipeline {
	readonly isolateId = crypto.randomUUID();
	private readonly batches = new BatchQueue(this.isolateId);
	private readonly families: RenderedFamilies;
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
		const { registry, primed } = options.metrics;
		this.families = { definitions: registry.definitions, primed, aggregatedGauge: metricsAggregated };
	}

	/**
	 * Called after each request: makes sure its events reach the aggregator within
	 * `flushMs`, with at most one ingest per `flushMs`.
	 */
	afterRequest(ctx: Pick<ExecutionContext, "waitUntil">): void {
		if (this.flushWaiting || this.options.aggregator === undefined || !this.options.metrics.recorder.hasPending()) return;
		this.flushWaiting = true;
		const delay = Math.max(0, this.lastFlushAt + this.options.flushMs - this.now());
		ctx.waitUntil(sleep(delay).then(() => this.flush()));
	}

	/** Sends the pending delta (and any unacknowledged batches) to this isolate's shard. */
	flush(): Promise<void> {
		const run = this.chain.then(async () => {
			this.flushWaiting = false;
			// A scrape may have carried the delta meanwhile: then there is nothing to send.
			if (this.batches.pending === 0 && !this.options.metrics.recorder.hasPending()) return;
			this.lastFlushAt = this.now();
			const payload = this.seal();
			try {
				const result = await this.withTimeout(this.stub(this.ownShard).ingest(payload));
				if (result.refused !== null) throw new IngestRefused(result.refused);
				this.batches.acknowledge(payload);
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
			if (this.options.aggregator !== undefined) {
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
					this.batches.acknowledge(payload);
					metrics.flush("ok");
					// Events still waiting for room in the queue are this isolate's own: they belong in the answer too.
					const unsent = { totals: metrics.recorder.unsent, gauges: {} };
					return { body: renderAggregate(this.families, [...snapshots, unsent]), aggregated: true };
				} catch (error) {
					this.failed(error);
				}
			}
			return { body: renderIsolate(this.families, metrics.recorder.totals, this.options.gauges(), this.isolateId), aggregated: false };
		});
		this.chain = run.catch(() => {});
		return run;
	}

	/** Whether this isolate's shard answers within the budget. */
	async reachable(): Promise<boolean> {
		if (this.options.aggregator === undefined) return false;
		try {
			await this.withTimeout(this.stub(this.ownShard).ping());
			return true;
		} catch {
			return false;
		}
	}

	/** Moves the pending delta into a new batch, unless too many sent batches await an answer. */
	private seal(): IngestPayload {
		const { recorder } = this.options.metrics;
		return this.batches.seal(() => recorder.takeDelta(), this.options.gauges());
	}

	private failed(error: unknown): void {
		const timeout = error instanceof MetricsTimeoutError;
		this.options.metrics.flush(timeout ? "timeout" : "error");
		this.options.log.warn("metrics aggregator call failed", {
			reason: timeout ? "timeout" : error instanceof Error ? error.name : "error",
			unacked_batches: this.batches.pending,
		});
	}

	private stub(shard: number): AggregatorClient {
		return this.options.aggregator!(shard);
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
