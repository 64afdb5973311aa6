import autocannon from "autocannon";
import type { Scenario } from "./scenarios.ts";

/**
 * Loads `url` with the scenario's requests, `connections` at a time: for `durationSec`, or, where
 * the scenario sets `requestsPerRound` (and `whole` is asked), until that many are answered.
 */
export function load(url: string, scenario: Scenario, options: { connections: number; durationSec: number; whole?: boolean }): Promise<autocannon.Result> {
	let n = 0;
	const setupRequest = (request: autocannon.Request): autocannon.Request => ({ ...request, ...scenario.request(++n) });
	const amount = options.whole === true ? scenario.requestsPerRound : undefined;
	return autocannon({ url, connections: options.connections, ...(amount === undefined ? { duration: options.durationSec } : { amount }), requests: [{ setupRequest }] });
}

export function statusCounts(result: autocannon.Result): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) counts[status] = (stats as { count: number }).count;
	if (result.errors > 0) counts.errors = result.errors;
	if (result.timeouts > 0) counts.timeouts = result.timeouts;
	return counts;
}

/** One request at a time, after the load: latency without queueing, to the tenth of a millisecond. */
export async function sequentialLatency(url: string, scenario: Scenario, count = scenario.probes ?? 300): Promise<{ p50Ms: number; p99Ms: number }> {
	const times: number[] = [];
	const probe = scenario.probe ?? scenario.request;
	for (let i = 0; i < count; i++) {
		const { method, path, headers, body } = probe(1_000_000_000 + i);
		const started = performance.now();
		const response = await fetch(url + path, { method, headers, body });
		await response.arrayBuffer();
		times.push(performance.now() - started);
		if (response.status !== scenario.probeStatus) throw new Error(`${scenario.name}: a latency probe got ${response.status}, not ${scenario.probeStatus}`);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

export function percentile(values: number[], q: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function median(values: number[]): number {
	return percentile(values, 0.5);
}

/** The order of round `round` (from 1): each round starts one further along, so no scenario always follows the same one. */
export function inRoundOrder<T>(items: readonly T[], round: number): T[] {
	const shift = (round - 1) % items.length;
	return [...items.slice(shift), ...items.slice(0, shift)];
}
