import { isEmpty, type Samples } from "./samples.ts";

// How an isolate's deltas reach the aggregator: the ingest format both sides speak, and the
// isolate's queue of batches that keeps each one's sequence number until it is acknowledged.

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

/** Sent batches whose fate is unknown are resent as they are; new events wait while this many are. */
export const MAX_UNACKED_BATCHES = 2;

/**
 * One isolate's outgoing batches: each gets the next sequence number when it is sealed
 * and keeps it until the aggregator took it, so a retry never counts twice and a failure
 * loses nothing. Pure bookkeeping: sending is the pipeline's.
 */
export class BatchQueue {
	private seq = 0;
	private unacked: DeltaBatch[] = [];
	readonly isolateId: string;

	constructor(isolateId: string) {
		this.isolateId = isolateId;
	}

	/** Batches sent (or about to be) and not yet acknowledged. */
	get pending(): number {
		return this.unacked.length;
	}

	/**
	 * The payload to send now: every unacknowledged batch, plus `delta` as a new batch
	 * unless `MAX_UNACKED_BATCHES` already await an answer. `takeDelta` is called only when
	 * there is room, so events that do not fit stay with the caller.
	 */
	seal(takeDelta: () => Samples, gauges: Record<string, number>): IngestPayload {
		if (this.unacked.length < MAX_UNACKED_BATCHES) {
			const samples = takeDelta();
			// An empty batch is still sent when nothing else is, so the gauges reach the aggregator.
			if (!isEmpty(samples) || this.unacked.length === 0) this.unacked.push({ seq: ++this.seq, samples, gauges });
		}
		return { v: INGEST_VERSION, isolate: this.isolateId, batches: [...this.unacked] };
	}

	/** The aggregator applied (or had already applied) every batch of `payload`. */
	acknowledge(payload: IngestPayload): void {
		const last = payload.batches.at(-1)?.seq ?? 0;
		this.unacked = this.unacked.filter((batch) => batch.seq > last);
	}
}
