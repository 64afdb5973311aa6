import type { MetricDefinition } from "./definitions.ts";
import { seriesKey } from "./samples.ts";

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
}
