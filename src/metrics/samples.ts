import type { MetricDefinition } from "./definitions.ts";

/** A histogram series: per-bucket counts (not cumulative; the last is the `+Inf` overflow), sum, count. */
export interface HistogramValue {
	b: number[];
	s: number;
	c: number;
}

export type SeriesValue = number | HistogramValue;

/**
 * Values by family name, then by series key (the JSON array of label values in the
 * definition's sorted label order). Plain data, so it crosses RPC and storage as is.
 */
export type Samples = Record<string, Record<string, SeriesValue>>;

export function seriesKey(labelValues: readonly string[]): string {
	return JSON.stringify(labelValues);
}

/** Adds `from` into `into`; both follow the same definitions. Counters and histograms sum. */
export function mergeSamples(into: Samples, from: Samples): Samples {
	for (const [family, series] of Object.entries(from)) {
		const target = (into[family] ??= {});
		for (const [key, value] of Object.entries(series)) {
			const existing = target[key];
			if (typeof value === "number") {
				target[key] = (typeof existing === "number" ? existing : 0) + value;
			} else if (existing === undefined || typeof existing === "number") {
				target[key] = { b: [...value.b], s: value.s, c: value.c };
			} else {
				for (let i = 0; i < value.b.length; i++) existing.b[i] = (existing.b[i] ?? 0) + value.b[i]!;
				existing.s += value.s;
				existing.c += value.c;
			}
		}
	}
	return into;
}

/** Adds up gauges by name: the aggregate of several isolates' (or shards') absolute values. */
export function sumGauges(all: Iterable<Record<string, number>>): Record<string, number> {
	const sums: Record<string, number> = {};
	for (const gauges of all) for (const [name, value] of Object.entries(gauges)) sums[name] = (sums[name] ?? 0) + value;
	return sums;
}

export function isEmpty(samples: Samples): boolean {
	for (const family in samples) for (const _ in samples[family]) return false;
	return true;
}
