import type { MetricDefinition } from "./definitions.ts";
import { emptyHistogram } from "./gateway-metrics.ts";
import { mergeSamples, sumGauges, type HistogramValue, type Samples, type SeriesValue } from "./samples.ts";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type LabelPairs = readonly (readonly [string, string])[];

/** What a scrape's answer is made of: the families, and every series at zero. */
export interface RenderedFamilies {
	definitions: readonly MetricDefinition[];
	/** Every series at zero, laid under each answer so all are present before the first event. */
	primed: Samples;
	/** The gauge that says which answer a scrape got; written unlabelled in both. */
	aggregatedGauge: MetricDefinition;
}

/** The aggregate answer: the totals of every shard summed, their gauges summed. */
export function renderAggregate(families: RenderedFamilies, shards: readonly { totals: Samples; gauges: Record<string, number> }[]): string {
	const totals = structuredClone(families.primed);
	for (const shard of shards) mergeSamples(totals, shard.totals);
	return render(families, totals, sumGauges(shards.map((shard) => shard.gauges)), true, []);
}

/** The per-isolate fallback: this isolate's own totals, every series labelled with where it came from. */
export function renderIsolate(families: RenderedFamilies, totals: Samples, gauges: Record<string, number>, isolateId: string): string {
	const labels: LabelPairs = [
		["aggregation", "isolate"],
		["isolate", isolateId],
	];
	return render(families, mergeSamples(structuredClone(families.primed), totals), gauges, false, labels);
}

function render(families: RenderedFamilies, totals: Samples, gauges: Record<string, number>, aggregated: boolean, labels: LabelPairs): string {
	const { aggregatedGauge } = families;
	for (const [name, value] of Object.entries(gauges)) (totals[name] ??= {})["[]"] = value;
	const others = families.definitions.filter((definition) => definition !== aggregatedGauge);
	// The aggregation gauge keeps one unlabelled series, so `avg_over_time` reads both answers.
	return serialize(others, totals, labels) + serialize([aggregatedGauge], { [aggregatedGauge.name]: { "[]": aggregated ? 1 : 0 } });
}

/**
 * Writes samples as Prometheus text format 0.0.4: HELP and TYPE for every family, series
 * in sorted order, cumulative histogram buckets with `+Inf` equal to `_count`.
 * `extraLabels` are added to every series (the per-isolate fallback's labels).
 */
export function serialize(definitions: readonly MetricDefinition[], samples: Samples, extraLabels: LabelPairs = []): string {
	const lines: string[] = [];
	for (const definition of definitions) {
		const { name } = definition;
		lines.push(`# HELP ${name} ${escapeHelp(definition.help)}`, `# TYPE ${name} ${definition.type}`);
		const family = samples[name] ?? {};
		const keys = Object.keys(family).sort();
		// An unlabelled family always has its one series, at zero before any event.
		if (keys.length === 0 && definition.labelNames.length === 0) keys.push("[]");
		for (const key of keys) {
			const labels: LabelPairs = [...labelsOf(definition, key), ...extraLabels];
			writeSeries(lines, definition, labels, family[key]);
		}
	}
	return `${lines.join("\n")}\n`;
}

/** A series key (the JSON array of label values) back into label pairs, in the definition's order. */
function labelsOf(definition: MetricDefinition, key: string): LabelPairs {
	const values: unknown = JSON.parse(key);
	return definition.labelNames.map((label, i) => [label, Array.isArray(values) ? String(values[i] ?? "") : ""]);
}

function writeSeries(lines: string[], definition: MetricDefinition, labels: LabelPairs, value: SeriesValue | undefined): void {
	if (definition.type === "histogram") {
		writeHistogram(lines, definition, labels, typeof value === "object" ? value : emptyHistogram(definition));
	} else {
		lines.push(`${definition.name}${formatLabels(labels)} ${formatValue(typeof value === "number" ? value : 0)}`);
	}
}

function writeHistogram(lines: string[], definition: MetricDefinition, labels: LabelPairs, value: HistogramValue): void {
	const { name, buckets } = definition;
	let cumulative = 0;
	for (let i = 0; i < buckets.length; i++) {
		cumulative += value.b[i] ?? 0;
		lines.push(`${name}_bucket${formatLabels([...labels, ["le", formatBound(buckets[i]!)]])} ${formatValue(cumulative)}`);
	}
	lines.push(`${name}_bucket${formatLabels([...labels, ["le", "+Inf"]])} ${formatValue(value.c)}`);
	lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(value.s)}`);
	lines.push(`${name}_count${formatLabels(labels)} ${formatValue(value.c)}`);
}

function formatLabels(labels: LabelPairs): string {
	if (labels.length === 0) return "";
	return `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
}

function formatValue(value: number): string {
	if (Number.isNaN(value)) return "NaN";
	if (value === Number.POSITIVE_INFINITY) return "+Inf";
	if (value === Number.NEGATIVE_INFINITY) return "-Inf";
	return String(value);
}

/** Bucket bounds as floats (`100.0`), as the Python backend wrote them and Prometheus 3 normalizes them. */
function formatBound(bound: number): string {
	return Number.isInteger(bound) && Math.abs(bound) < 1e21 ? bound.toFixed(1) : formatValue(bound);
}

/** HELP text escapes backslash and newline; every occurrence, not the first. */
function escapeHelp(text: string): string {
	return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** A label value escapes backslash, newline and double quote; every occurrence, not the first. */
function escapeLabelValue(text: string): string {
	return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}
