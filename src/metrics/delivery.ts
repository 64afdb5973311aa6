import { INGEST_VERSION, type DeltaBatch, type IngestPayload } from "./ingest.ts";
import { isEmpty, type Samples } from "./samples.ts";

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
