import { DurableObject } from "cloudflare:workers";
import { INGEST_VERSION, type AggregateSnapshot, type IngestPayload, type IngestResult } from "./delivery.ts";
import { isEmpty, mergeSamples, sumGauges, type Samples } from "./samples.ts";

/** An isolate's gauges count while it reported within this window (inclusive). */
export const LIVE_WINDOW_MS = 60_000;
/** After this, an isolate's dedupe state is dropped: a retry never comes that late. */
export const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;
/** How often the alarm forgets old isolates: an isolate is kept between 24 and 25 hours. */
export const SWEEP_EVERY_MS = 60 * 60 * 1000;
/** The longest isolate id taken (a UUID is 36 characters). */
const MAX_ISOLATE_ID = 64;

/** The format of the first release: one JSON row holding everything, rewritten per ingest. */
interface LegacyState {
	v: 1;
	totals: Samples;
	isolates: Record<string, { seq: number; seenAt: number; gauges: Record<string, number> }>;
}

interface LiveIsolate {
	seenAt: number;
	gauges: Record<string, number>;
}

/**
 * Sums the metric deltas of every isolate (docs/design.md, "Metrics"). SQLite storage holds a row per
 * isolate (its last applied `seq`, when it was last seen, its gauges) and one row of totals;
 * an ingest writes only the sending isolate's row and, when a batch was new, the totals row,
 * in one transaction: two rows, however many isolates the object has seen. So counters never
 * go backwards when the object is evicted or restarted, and a retried flush is applied once.
 * Old isolates are forgotten by an hourly alarm with one DELETE; the gauges of the isolates
 * seen within the last minute are kept in memory, in the order they were last seen.
 * It reads no binding, so it does not depend on the Worker's `Env` (which names it).
 */
export class MetricsAggregator extends DurableObject<unknown> {
	private totals: Samples = {};
	/** Isolates seen within about `LIVE_WINDOW_MS`, least recently seen first (a Map keeps insertion order). */
	private readonly live = new Map<string, LiveIsolate>();
	private isolates = 0;
	private sweepScheduled = false;
	/** Rows written by ingests since the object started (row writes are billed). */
	rowsWritten = 0;
	/** The clock; tests replace it through `runInDurableObject`. */
	now: () => number = () => Date.now();

	constructor(ctx: DurableObjectState, env: unknown) {
		super(ctx, env);
		void ctx.blockConcurrencyWhile(async () => {
			this.load();
			this.sweepScheduled = (await ctx.storage.getAlarm()) !== null;
			if (!this.sweepScheduled && this.isolates > 0) await this.scheduleSweep();
		});
	}

	/**
	 * Applies the batches not applied before; says how many were new. A format it does not
	 * know is refused whole (an isolate of a newer deploy keeps its batches until it can send them).
	 */
	async ingest(payload: IngestPayload): Promise<IngestResult> {
		const result = this.apply(payload);
		if (result.refused === null && !this.sweepScheduled) await this.scheduleSweep();
		return result;
	}

	/** For `/healthz` details: answers when the object is up and its state is loaded. */
	ping(): { isolates: number } {
		return { isolates: this.isolates };
	}

	/** The totals for a scrape, after applying the scraping isolate's own pending batches. */
	async snapshot(payload?: IngestPayload): Promise<AggregateSnapshot> {
		const ingest = payload === undefined ? null : await this.ingest(payload);
		const now = this.now();
		this.forgetSilent(now);
		const live = [...this.live.values()].filter((isolate) => now - isolate.seenAt <= LIVE_WINDOW_MS);
		return { ingest, totals: this.totals, gauges: sumGauges(live.map((isolate) => isolate.gauges)) };
	}

	/** Forgets the isolates not seen for `FORGET_AFTER_MS`, with one statement, off the ingest path. */
	override async alarm(): Promise<void> {
		const { sql } = this.ctx.storage;
		sql.exec("DELETE FROM isolates WHERE seen_at < ?", this.now() - FORGET_AFTER_MS);
		this.isolates = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM isolates").one().n;
		this.sweepScheduled = false;
		if (this.isolates > 0) await this.scheduleSweep();
	}

	/** Creates the tables, moves a first-release single row into them once, and reads what a scrape needs. */
	protected load(): void {
		const { sql } = this.ctx.storage;
		sql.exec("CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)");
		// No index on seen_at: it would add a row write to every ingest; the hourly DELETE scans instead.
		sql.exec("CREATE TABLE IF NOT EXISTS isolates (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, seen_at INTEGER NOT NULL, gauges TEXT NOT NULL) WITHOUT ROWID");
		this.migrateLegacy();
		const totals = sql.exec<{ body: string }>("SELECT body FROM totals WHERE id = 1").toArray()[0];
		this.totals = totals === undefined ? {} : (JSON.parse(totals.body) as Samples);
		this.isolates = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM isolates").one().n;
		this.live.clear();
		const since = this.now() - LIVE_WINDOW_MS;
		for (const row of sql.exec<{ id: string; seen_at: number; gauges: string }>(
			"SELECT id, seen_at, gauges FROM isolates WHERE seen_at >= ? ORDER BY seen_at",
			since,
		)) {
			this.live.set(row.id, { seenAt: row.seen_at, gauges: JSON.parse(row.gauges) as Record<string, number> });
		}
	}

	private migrateLegacy(): void {
		const { sql } = this.ctx.storage;
		if (sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'aggregate'").toArray().length === 0) return;
		this.ctx.storage.transactionSync(() => {
			const row = sql.exec<{ body: string }>("SELECT body FROM aggregate WHERE id = 1").toArray()[0];
			if (row !== undefined) {
				const legacy = JSON.parse(row.body) as LegacyState;
				sql.exec("INSERT OR REPLACE INTO totals (id, body) VALUES (1, ?)", JSON.stringify(legacy.totals));
				for (const [id, isolate] of Object.entries(legacy.isolates)) {
					sql.exec(
						"INSERT OR REPLACE INTO isolates (id, seq, seen_at, gauges) VALUES (?, ?, ?, ?)",
						id,
						isolate.seq,
						isolate.seenAt,
						JSON.stringify(isolate.gauges),
					);
				}
			}
			sql.exec("DROP TABLE aggregate");
		});
	}

	private apply(payload: IngestPayload): IngestResult {
		if (payload?.v !== INGEST_VERSION) return { applied: 0, refused: "unsupported_version" };
		if (!wellFormed(payload)) return { applied: 0, refused: "malformed" };
		const { sql } = this.ctx.storage;
		const now = this.now();
		const known = sql.exec<{ seq: number; gauges: string }>("SELECT seq, gauges FROM isolates WHERE id = ?", payload.isolate).toArray()[0];
		let seq = known?.seq ?? 0;
		let gauges: Record<string, number> | undefined;
		const delta: Samples = {};
		let applied = 0;
		for (const batch of [...payload.batches].sort((a, b) => a.seq - b.seq)) {
			if (batch.seq <= seq) continue;
			mergeSamples(delta, batch.samples);
			seq = batch.seq;
			gauges = batch.gauges;
			applied++;
		}
		// Only retries: the gauges stay those of the last batch applied.
		gauges ??= known === undefined ? {} : (JSON.parse(known.gauges) as Record<string, number>);
		const totals = isEmpty(delta) ? this.totals : mergeSamples(structuredClone(this.totals), delta);
		// The isolate's row, and the totals when they changed, in one transaction; memory
		// changes only once the write succeeded.
		let written = 0;
		this.ctx.storage.transactionSync(() => {
			written += sql.exec(
				"INSERT INTO isolates (id, seq, seen_at, gauges) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, seen_at = excluded.seen_at, gauges = excluded.gauges",
				payload.isolate,
				seq,
				now,
				JSON.stringify(gauges),
			).rowsWritten;
			if (totals !== this.totals) {
				written += sql.exec(
					"INSERT INTO totals (id, body) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
					JSON.stringify(totals),
				).rowsWritten;
			}
		});
		this.rowsWritten += written;
		this.totals = totals;
		if (known === undefined) this.isolates++;
		// Re-inserted at the end, so the Map stays ordered by the time each isolate was last seen.
		this.live.delete(payload.isolate);
		this.live.set(payload.isolate, { seenAt: now, gauges });
		this.forgetSilent(now);
		return { applied, refused: null };
	}

	/** Drops silent isolates from the front of the live list: amortized one step per ingest. */
	private forgetSilent(now: number): void {
		for (const [id, isolate] of this.live) {
			if (now - isolate.seenAt <= LIVE_WINDOW_MS) break;
			this.live.delete(id);
		}
	}

	private async scheduleSweep(): Promise<void> {
		this.sweepScheduled = true;
		try {
			await this.ctx.storage.setAlarm(this.now() + SWEEP_EVERY_MS);
		} catch (error) {
			this.sweepScheduled = false;
			throw error;
		}
	}
}

/** The shape an isolate sends; anything else is refused whole rather than failing midway. */
function wellFormed(payload: IngestPayload): boolean {
	if (typeof payload.isolate !== "string" || payload.isolate.length === 0 || payload.isolate.length > MAX_ISOLATE_ID) return false;
	if (!Array.isArray(payload.batches)) return false;
	return payload.batches.every(
		(batch) =>
			batch !== null &&
			typeof batch === "object" &&
			Number.isSafeInteger(batch.seq) &&
			batch.seq > 0 &&
			batch.samples !== null &&
			typeof batch.samples === "object" &&
			batch.gauges !== null &&
			typeof batch.gauges === "object",
	);
}
