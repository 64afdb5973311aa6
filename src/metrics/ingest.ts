import type { Samples } from "./samples.ts";

/** The ingest format between isolates and the aggregator; bump on any change, for gradual deploys. */
export const INGEST_VERSION = 1;

/** One isolate's events of one interval; `seq` increases by one per batch of that isolate. */
export interface DeltaBatch {
	seq: number;
	samples: Samples;
	/** Absolute values of the isolate's own gauges (not deltas) at the time of the batch. */
	gauges: Record<string, number>;
}

export interface IngestPayload {
	v: typeof INGEST_VERSION;
	isolate: string;
	batches: DeltaBatch[];
}

/** The aggregator's answer to an ingest: how many batches were new, or why it refused all. */
export interface IngestResult {
	applied: number;
	/** Why nothing was applied, or null: a version it does not know, or a payload not of that version's shape. */
	refused: "unsupported_version" | "malformed" | null;
}

/** What the aggregator answers a scrape with: the totals and the gauges summed over live isolates. */
export interface AggregateSnapshot {
	/** The result of the ingest that came with the scrape, if any. */
	ingest: IngestResult | null;
	totals: Samples;
	gauges: Record<string, number>;
}
