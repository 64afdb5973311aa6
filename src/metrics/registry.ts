import type { MetricDefinition } from "./definitions.ts";
import { bucketIndex, emptyHistogram, seriesKey, type Samples } from "./samples.ts";

/** One labelled series of a family, resolved once so recording is two map lookups. */
export interface SeriesHandle {
	readonly definition: MetricDefinition;
	readonly key: string;
}

/** The metric families of a deployment, in exposition order; passed in explicitly, never global. */
export class Registry {
	private readonly byName = new Map<string, MetricDefinition>();

	readonly definitions: readonly MetricDefinition[];

	constructor(definitions: readonly MetricDefinition[]) {
		this.definitions = definitions;
		for (const definition of definitions) {
			if (this.byName.has(definition.name)) throw new Error(`metric ${definition.name} is defined twice`);
			this.byName.set(definition.name, definition);
		}
	}

	/** Resolves a series; the labels must be exactly the family's label names. */
	series(definition: MetricDefinition, labels: Readonly<Record<string, string>> = {}): SeriesHandle {
		if (this.byName.get(definition.name) !== definition) throw new Error(`metric ${definition.name} is not in this registry`);
		const names = Object.keys(labels);
		if (names.length !== definition.labelNames.length || names.some((name) => !definition.labelNames.includes(name))) {
			throw new Error(`metric ${definition.name} takes labels [${definition.labelNames.join(", ")}]`);
		}
		return { definition, key: seriesKey(definition.labelNames.map((name) => labels[name]!)) };
	}

	/** Every given series at zero: what a scrape shows before the first event ("primed"). */
	zeros(handles: readonly SeriesHandle[]): Samples {
		const samples: Samples = {};
		for (const { definition, key } of handles) {
			(samples[definition.name] ??= {})[key] = definition.type === "histogram" ? emptyHistogram(definition) : 0;
		}
		return samples;
	}
}

/**
 * One isolate's recorded values: the delta not yet taken by a flush, and the running
 * totals (the per-isolate fallback answer).
 */
export class Recorder {
	private pending: Samples = {};
	readonly totals: Samples = {};

	inc(handle: SeriesHandle, by = 1): void {
		add(this.pending, handle, by);
		add(this.totals, handle, by);
	}

	observe(handle: SeriesHandle, value: number): void {
		observe(this.pending, handle, value);
		observe(this.totals, handle, value);
	}

	/** The delta not yet taken, to read without taking it. */
	get unsent(): Readonly<Samples> {
		return this.pending;
	}

	/** Takes the delta since the last call; recording starts a fresh one. */
	takeDelta(): Samples {
		const delta = this.pending;
		this.pending = {};
		return delta;
	}

	hasPending(): boolean {
		for (const _ in this.pending) return true;
		return false;
	}
}

function add(samples: Samples, { definition, key }: SeriesHandle, by: number): void {
	const family = (samples[definition.name] ??= {});
	const current = family[key];
	family[key] = (typeof current === "number" ? current : 0) + by;
}

function observe(samples: Samples, { definition, key }: SeriesHandle, value: number): void {
	const family = (samples[definition.name] ??= {});
	let series = family[key];
	if (typeof series !== "object") {
		series = emptyHistogram(definition);
		family[key] = series;
	}
	series.b[bucketIndex(definition, value)]!++;
	series.s += value;
	series.c++;
}
