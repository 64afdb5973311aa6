import type { MetricDefinition } from "./definitions.ts";
import type { HistogramValue, Samples } from "./samples.ts";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type LabelPairs = readonly (readonly [string, string])[];

/**
 * Writes samples as Prometheus text format 0.0.4: HELP and TYPE for every family, series
 * in sorted order, cumulative histogram buckets with `+Inf` equal to `_count`.
 * `extraLabels` are added to every series (the per-isolate fallback's labels).
 */
export function serialize(definitions: readonly MetricDefinition[], samples: Samples, extraLabels: LabelPairs = []): string {
	const lines: string[] = [];
	for (const definition of definitions) {
		const { name, type } = definition;
		lines.push(`# HELP ${name} ${escapeHelp(definition.help)}`, `# TYPE ${name} ${type}`);
		const family = samples[name] ?? {};
		const keys = Object.keys(family).sort();
		if (keys.length === 0 && definition.labelNames.length === 0) {
			// An unlabelled family always has its one series, at zero before any event.
			keys.push("[]");
		}
		for (const key of keys) {
			const values = JSON.parse(key) as string[];
			const labels: [string, string][] = definition.labelNames.map((label, i) => [label, values[i] ?? ""]);
			labels.push(...(extraLabels as [string, string][]));
			const value = family[key];
			if (type === "histogram") {
				writeHistogram(lines, definition, labels, (value as HistogramValue | undefined) ?? emptyHistogram(definition));
			} else {
				lines.push(`${name}${formatLabels(labels)} ${formatValue((value as number | undefined) ?? 0)}`);
			}
		}
	}
	return `${lines.join("\n")}\n`;
}

function writeHistogram(lines: string[], definition: MetricDefinition, labels: [string, string][], value: HistogramValue): void {
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

function emptyHistogram(definition: MetricDefinition): HistogramValue {
	return { b: new Array<number>(definition.buckets.length + 1).fill(0), s: 0, c: 0 };
}

function formatLabels(labels: readonly (readonly [string, string])[]): string {
	if (labels.length === 0) return "";
	return `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`;
}

export function formatValue(value: number): string {
	if (Number.isNaN(value)) return "NaN";
	if (value === Number.POSITIVE_INFINITY) return "+Inf";
	if (value === Number.NEGATIVE_INFINITY) return "-Inf";
	return String(value);
}

/** Bucket bounds as floats (`100.0`), as the Python backend wrote them and Prometheus 3 normalizes them. */
function formatBound(bound: number): string {
	return Number.isInteger(bound) && Math.abs(bound) < 1e21 ? bound.toFixed(1) : formatValue(bound);
}

function escapeHelp(text: string): string {
	return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabelValue(text: string): string {
	return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
