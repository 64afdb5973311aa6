import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { INGEST_VERSION, type AggregateSnapshot, type IngestPayload, type IngestResult } from "./ingest.ts";
import { mergeSamples, sumGauges, type Samples } from "./samples.ts";

interface IsolateState {
	/** The last batch applied; a batch at or below it is a retry and is ignored. */
	seq: number;
	seenAt: number;
	gauges: Record<string, number>;
}

interface AggregateState {
	v: 1;
	totals: Samples;
	isolates: Record<string, IsolateState>;
}

/** An isolate's gauges count while it reported within this window. */
const LIVE_WINDOW_MS = 60_000;
/** After this, an isolate's dedupe state is dropped: a retry never comes that late. */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Sums the metric deltas of every isolate (SPEC section 4). The totals live in SQLite
 * storage as one row, written once per ingest, so counters never go backwards when the
 * object is evicted or restarted; each isolate's last sequence number is kept with them,
 * so a retried flush is applied once.
 */
export class MetricsAggregator extends DurableObject<Env> {
	private state: AggregateState = { v: 1, totals: {}, isolates: {} };

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		void ctx.blockConcurrencyWhile(async () => {
			ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS aggregate (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)");
			const row = ctx.storage.sql.exec<{ body: string }>("SELECT body FROM aggregate WHERE id = 1").toArray()[0];
			if (row !== undefined) this.state = JSON.parse(row.body) as AggregateState;
		});
	}

	/**
	 * Applies the batches not applied before; says how many were new. A format it does not
	 * know is refused whole (an isolate of a newer deploy keeps its batches until it can send them).
	 */
	ingest(payload: IngestPayload): IngestResult {
		if (payload?.v !== INGEST_VERSION) return { applied: 0, refused: "unsupported_version" };
		const now = Date.now();
		const next = structuredClone(this.state);
		const isolate = (next.isolates[payload.isolate] ??= { seq: 0, seenAt: now, gauges: {} });
		let applied = 0;
		for (const batch of [...payload.batches].sort((a, b) => a.seq - b.seq)) {
			if (batch.seq <= isolate.seq) continue;
			mergeSamples(next.totals, batch.samples);
			isolate.seq = batch.seq;
			isolate.gauges = batch.gauges;
			applied++;
		}
		isolate.seenAt = now;
		for (const [id, seen] of Object.entries(next.isolates)) {
			if (now - seen.seenAt > FORGET_AFTER_MS) delete next.isolates[id];
		}
		// One row per ingest; the in-memory state changes only once the write succeeded.
		this.ctx.storage.sql.exec(
			"INSERT INTO aggregate (id, body) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
			JSON.stringify(next),
		);
		this.state = next;
		return { applied, refused: null };
	}

	/** For `/healthz` details: answers when the object is up and its state is loaded. */
	ping(): { isolates: number } {
		return { isolates: Object.keys(this.state.isolates).length };
	}

	/** The totals for a scrape, after applying the scraping isolate's own pending batches. */
	snapshot(payload?: IngestPayload): AggregateSnapshot {
		const ingest = payload === undefined ? null : this.ingest(payload);
		const now = Date.now();
		const live = Object.values(this.state.isolates).filter((isolate) => now - isolate.seenAt <= LIVE_WINDOW_MS);
		return { ingest, totals: this.state.totals, gauges: sumGauges(live.map((isolate) => isolate.gauges)) };
	}
}
