import type { SettingReader } from "./reader.ts";

export interface MetricsConfig {
	/** Accepted bearer tokens for `/metrics` and `/healthz` details (`METRICS_TOKEN`); empty means open. */
	tokens: readonly string[];
	/** `METRICS_FLUSH_MS`, 10000 when unset; at most 25000, so a flush ends inside `waitUntil`'s limit. */
	flushMs: number;
	/** `METRICS_TIMEOUT_MS`, 1000 when unset. */
	timeoutMs: number;
	/** `METRICS_SHARDS`, 1 when unset. */
	shards: number;
}

/** The metrics pipeline's settings: who may scrape, how often isolates flush, over how many objects. */
export function readMetrics(read: SettingReader): MetricsConfig {
	return {
		tokens: read.secretList("METRICS_TOKEN"),
		flushMs: read.integer("METRICS_FLUSH_MS", 10_000, { min: 100, max: 25_000 }),
		timeoutMs: read.integer("METRICS_TIMEOUT_MS", 1_000, { min: 1, max: 30_000 }),
		shards: read.integer("METRICS_SHARDS", 1, { min: 1, max: 64 }),
	};
}
