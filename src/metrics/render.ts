import type { MetricDefinition } from "./definitions.ts";
import { serialize, type LabelPairs } from "./exposition.ts";
import { mergeSamples, sumGauges, type Samples } from "./samples.ts";

/** What the renderer needs of the gateway's metrics: the families, and every series at zero. */
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
