/**
 * Metric definitions: plain data, validated when defined, so the registry and the
 * serializer can trust them.
 */
export type MetricType = "counter" | "gauge" | "histogram";

export interface MetricDefinition {
	readonly name: string;
	readonly help: string;
	readonly type: MetricType;
	/** Sorted, so a series is identified by its values in this order. */
	readonly labelNames: readonly string[];
	/** Upper bounds of a histogram's buckets, increasing, without `+Inf`. */
	readonly buckets: readonly number[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function counter(name: string, help: string, labelNames: readonly string[] = []): MetricDefinition {
	if (!name.endsWith("_total")) throw new Error(`counter ${name}: name must end in _total`);
	return define(name, help, "counter", labelNames, []);
}

export function gauge(name: string, help: string, labelNames: readonly string[] = []): MetricDefinition {
	return define(name, help, "gauge", labelNames, []);
}

export function histogram(
	name: string,
	help: string,
	buckets: readonly number[],
	labelNames: readonly string[] = [],
): MetricDefinition {
	if (buckets.length === 0) throw new Error(`histogram ${name}: needs at least one bucket`);
	for (let i = 0; i < buckets.length; i++) {
		if (!Number.isFinite(buckets[i]!)) throw new Error(`histogram ${name}: bucket bounds must be finite (+Inf is implied)`);
		if (i > 0 && buckets[i]! <= buckets[i - 1]!) throw new Error(`histogram ${name}: buckets must increase`);
	}
	if (labelNames.includes("le")) throw new Error(`histogram ${name}: label name "le" is reserved`);
	return define(name, help, "histogram", labelNames, buckets);
}

function define(
	name: string,
	help: string,
	type: MetricType,
	labelNames: readonly string[],
	buckets: readonly number[],
): MetricDefinition {
	if (!METRIC_NAME.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not valid`);
	for (const label of labelNames) {
		if (!LABEL_NAME.test(label) || label.startsWith("__")) throw new Error(`metric ${name}: label name ${JSON.stringify(label)} is not valid`);
	}
	if (new Set(labelNames).size !== labelNames.length) throw new Error(`metric ${name}: duplicate label names`);
	return Object.freeze({ name, help, type, labelNames: Object.freeze([...labelNames].sort()), buckets: Object.freeze([...buckets]) });
}
