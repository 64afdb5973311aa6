/**
 * A strict reader of Prometheus text format 0.0.4 for tests, with the checks promtool
 * does not make: each family in one block, no duplicate series, histogram buckets
 * increasing and cumulative, `+Inf` equal to `_count`.
 */
export interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

export interface Family {
	name: string;
	type: string;
	help: string;
	samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

export function parseExposition(text: string): Map<string, Family> {
	if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
	const families = new Map<string, Family>();
	const seen = new Set<string>();
	let current: Family | null = null;
	for (const line of text.slice(0, -1).split("\n")) {
		if (line === "") continue;
		if (line.startsWith("# HELP ")) {
			const [, name, help] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
			if (name === undefined) throw new Error(`bad HELP line: ${line}`);
			if (families.has(name)) throw new Error(`family ${name} appears in two blocks`);
			current = { name, type: "untyped", help: help ?? "", samples: [] };
			families.set(name, current);
			continue;
		}
		if (line.startsWith("# TYPE ")) {
			const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
			if (name === undefined || current?.name !== name) throw new Error(`TYPE without its HELP first: ${line}`);
			current.type = type!;
			continue;
		}
		const match = SAMPLE.exec(line);
		if (match === null) throw new Error(`bad sample line: ${line}`);
		const [, name, labelText, valueText] = match;
		if (current === null || !(name === current.name || (current.type === "histogram" && /_(bucket|sum|count)$/.test(name!) && name!.replace(/_(bucket|sum|count)$/, "") === current.name))) {
			throw new Error(`sample ${name} outside its family block`);
		}
		const labels: Record<string, string> = {};
		if (labelText) {
			LABEL.lastIndex = 0;
			while (LABEL.lastIndex < labelText.length) {
				const label = LABEL.exec(labelText);
				if (label === null) throw new Error(`bad labels: ${labelText}`);
				labels[label[1]!] = label[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
			}
		}
		const identity = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
		if (seen.has(identity)) throw new Error(`duplicate series ${identity}`);
		seen.add(identity);
		current.samples.push({ name: name!, labels, value: parseValue(valueText!) });
	}
	for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
	return families;
}

function parseValue(text: string): number {
	if (text === "+Inf") return Number.POSITIVE_INFINITY;
	if (text === "-Inf") return Number.NEGATIVE_INFINITY;
	if (text === "NaN") return Number.NaN;
	const value = Number(text);
	if (Number.isNaN(value)) throw new Error(`bad value ${text}`);
	return value;
}

function checkHistogram(family: Family): void {
	const groups = new Map<string, Sample[]>();
	for (const sample of family.samples) {
		const { le: _le, ...rest } = sample.labels;
		const key = JSON.stringify(Object.entries(rest).sort());
		groups.set(key, [...(groups.get(key) ?? []), sample]);
	}
	for (const [key, samples] of groups) {
		const buckets = samples.filter((s) => s.name.endsWith("_bucket"));
		const count = samples.find((s) => s.name.endsWith("_count"));
		if (count === undefined || samples.find((s) => s.name.endsWith("_sum")) === undefined) throw new Error(`${family.name}${key}: no _sum or _count`);
		let previousBound = Number.NEGATIVE_INFINITY;
		let previousCount = 0;
		for (const bucket of buckets) {
			const bound = parseValue(bucket.labels.le ?? "");
			if (!(bound > previousBound)) throw new Error(`${family.name}${key}: buckets not increasing at le=${bucket.labels.le}`);
			if (bucket.value < previousCount) throw new Error(`${family.name}${key}: buckets not cumulative at le=${bucket.labels.le}`);
			previousBound = bound;
			previousCount = bucket.value;
		}
		if (buckets.at(-1)?.labels.le !== "+Inf") throw new Error(`${family.name}${key}: no +Inf bucket`);
		if (buckets.at(-1)!.value !== count.value) throw new Error(`${family.name}${key}: +Inf bucket differs from _count`);
	}
}

/** The value of one sample, matched by name and a subset of labels; throws when not exactly one matches. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
	const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ""));
	const matches = (family?.samples ?? []).filter(
		(sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
	);
	if (matches.length !== 1) throw new Error(`${matches.length} samples match ${name} ${JSON.stringify(labels)}`);
	return matches[0]!.value;
}
