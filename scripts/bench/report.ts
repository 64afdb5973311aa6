import { median } from "./load.ts";
import type { BenchReport, ScenarioResult } from "./run.ts";

/** A goal of issue 13: one scenario's figure as a ratio to another's, measured in the same run. */
export interface Goal {
	goal: string;
	of: string;
	against: string;
	figure: "cpu" | "throughput";
	/** The ratio must be at most this (CPU) or at least this (throughput). */
	bound: number;
}

export const GOALS: readonly Goal[] = [
	{ goal: "1 KiB POST: CPU per forwarded request at most 1.10 x the buffering floor", of: "memory-1k", against: "floor-buffering-1k", figure: "cpu", bound: 1.1 },
	{ goal: "1 KiB POST: throughput at least 0.80 x the streaming floor", of: "memory-1k", against: "floor-streaming-1k", figure: "throughput", bound: 0.8 },
	{ goal: "256 KiB POST: CPU per forwarded request at most 1.05 x the buffering floor", of: "memory-256k", against: "floor-buffering-256k", figure: "cpu", bound: 1.05 },
	{ goal: "NDJSON stream of 200 events, default settings: CPU per request at most 1.10 x a bare proxy of the same stream", of: "memory-ndjson", against: "floor-streaming-ndjson", figure: "cpu", bound: 1.1 },
	{ goal: "NDJSON stream of 2,000 events, default settings: CPU per request at most 1.10 x a bare proxy of the same stream", of: "memory-ndjson-2k", against: "floor-streaming-ndjson-2k", figure: "cpu", bound: 1.1 },
	{ goal: "NDJSON stream of 200 events, a client under a token budget: CPU per request at most 1.10 x a bare proxy of the same stream (no JavaScript per chunk)", of: "memory-ndjson-budget", against: "floor-streaming-ndjson", figure: "cpu", bound: 1.1 },
	{ goal: "bad-signature flood: CPU per rejected request at most 0.6 x the streaming floor's per forwarded request", of: "bad-signature-flood", against: "floor-streaming-1k", figure: "cpu", bound: 0.6 },
];

export interface GoalResult {
	goal: Goal;
	/**
	 * The figure judged: for CPU, the median of the rounds' own ratios (each round runs both rows,
	 * one soon after the other), else the ratio of the two rows' medians. Null when either scenario
	 * did not run (or had no CPU figure).
	 */
	ratio: number | null;
	/** The ratio of the two rows' medians, printed beside it. */
	ofMedians: number | null;
	/** Each round's ratio, in round order (CPU goals whose rows have them). */
	rounds: number[];
	met: boolean | null;
}

/**
 * The ratio of two rows round by round: each round measures every scenario once, so a round's
 * two figures share the machine's moment (the machine drifts by up to 15% between minutes, more
 * than most goals' margins). Empty when the rows' rounds do not pair up.
 */
export function roundRatios(of: readonly number[] | undefined, against: readonly number[] | undefined): number[] {
	if (of === undefined || against === undefined || of.length !== against.length) return [];
	return of.map((value, i) => value / against[i]!).filter((ratio) => Number.isFinite(ratio));
}

export function checkGoals(report: Pick<BenchReport, "scenarios">): GoalResult[] {
	const find = (name: string) => report.scenarios.find((s) => s.name === name);
	const figure = (name: string, kind: Goal["figure"]) => {
		const scenario = find(name);
		return scenario === undefined ? null : kind === "cpu" ? scenario.cpuUsPerRequest : scenario.requestsPerSec;
	};
	return GOALS.map((goal) => {
		const of = figure(goal.of, goal.figure);
		const against = figure(goal.against, goal.figure);
		if (of === null || against === null || !(against > 0)) return { goal, ratio: null, ofMedians: null, rounds: [], met: null };
		const ofMedians = of / against;
		const rounds = goal.figure === "cpu" ? roundRatios(find(goal.of)?.cpuUsPerRound, find(goal.against)?.cpuUsPerRound) : [];
		const ratio = rounds.length > 0 ? median(rounds) : ofMedians;
		return { goal, ratio, ofMedians, rounds, met: goal.figure === "cpu" ? ratio <= goal.bound : ratio >= goal.bound };
	});
}

/** The floor a row is compared with in the table: the buffering floor of its body size, the streaming one for streams. */
function floorOf(s: ScenarioResult): string | null {
	if (s.target.startsWith("floor-")) return null;
	if (s.name.includes("-ndjson")) return s.name.endsWith("-2k") ? "floor-streaming-ndjson-2k" : "floor-streaming-ndjson";
	return s.name.endsWith("256k") ? "floor-buffering-256k" : "floor-buffering-1k";
}

const fixed = (value: number | null | undefined, digits: number) => (value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits));

/** The report as Markdown: the table, the goals, and the figures beside them. */
export function formatReport(report: BenchReport): string {
	const lines = [
		`Run ${report.machine.date}, ${report.machine.cpus} CPUs, Node ${report.machine.node}; ${report.rounds} rounds of ${report.durationSec} s per scenario, ${report.connections} connections; METRICS_FLUSH_MS=${report.metricsFlushMs}.`,
		report.together
			? "Loaded together (--together): each round loaded every scenario at once, each on its own workerd, so paired rows shared the machine's every moment; each row's throughput is its share."
			: "Each round loaded one scenario after another, the order turning each round.",
		"CPU/req: workerd's CPU time (user + system, /proc/<pid>/stat) over the requests it answered, median of the rounds. req/s and loaded p99: median of the rounds. p50/p99: one request at a time after the load.",
		report.machine.pinned ? "workerd ran on a CPU of its own; the load generator and the demo origin shared the other." : "Load generator, origin and workerd shared the CPUs.",
		"",
		"| scenario | Worker | CPU/req us | CPU vs floor | req/s | p50 ms | p99 ms | loaded p99 ms | statuses | Upstash calls/req | ingest RPCs (at most) |",
		"|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
	];
	for (const s of report.scenarios) {
		const floorName = floorOf(s);
		const floor = floorName === null ? undefined : report.scenarios.find((other) => other.name === floorName);
		const vsFloor = floor?.cpuUsPerRequest && s.cpuUsPerRequest !== null ? `${(s.cpuUsPerRequest / floor.cpuUsPerRequest).toFixed(2)} (${floorName})` : "-";
		const statuses = Object.entries(s.statusCounts).map(([k, v]) => `${k}: ${v}`).join(", ");
		lines.push(
			`| ${s.name} | ${s.target} | ${fixed(s.cpuUsPerRequest, 0)} | ${vsFloor} | ${s.requestsPerSec.toFixed(0)} | ${s.latencyP50Ms.toFixed(2)} | ${s.latencyP99Ms.toFixed(2)} | ${s.loadedP99Ms} | ${statuses} | ${fixed(s.upstashCallsPerRequest, 3)} | ${s.ingests ? `${s.ingests.count} (${s.ingests.bound})` : "-"} |`,
		);
	}
	lines.push(
		"",
		"A CPU goal's ratio is the median of the rounds' ratios (each round runs both rows, so its two figures share the machine's moment); the ratio of the rows' medians and each round's ratio are beside it.",
		"",
		"| goal | ratio in this run | ratio of the medians | each round | |",
		"|---|---:|---:|---|---|",
	);
	for (const { goal, ratio, ofMedians, rounds, met } of checkGoals(report)) {
		const verdict = met === null ? `not measured (needs ${goal.of} and ${goal.against})` : met ? "met" : "not met";
		lines.push(`| ${goal.goal} (${goal.of} / ${goal.against}) | ${fixed(ratio, 2)} | ${fixed(ofMedians, 2)} | ${rounds.map((r) => r.toFixed(2)).join(", ") || "-"} | ${verdict} |`);
	}
	lines.push("", "Workers:", ...report.targets.map((t) => `- ${t.name}: ${t.about}`), "");

	const memory = report.scenarios.find((s) => s.name === "memory-1k");
	const noMetrics = report.scenarios.find((s) => s.name === "memory-no-metrics-1k");
	if (memory && noMetrics) {
		const cpu = memory.cpuUsPerRequest !== null && noMetrics.cpuUsPerRequest !== null ? `, ${(memory.cpuUsPerRequest - noMetrics.cpuUsPerRequest).toFixed(0)} us of CPU per request` : "";
		lines.push(`Metrics on the request path: ${(100 * (1 - memory.requestsPerSec / noMetrics.requestsPerSec)).toFixed(1)}% of throughput${cpu} (memory-1k against memory-no-metrics-1k).`);
	}
	lines.push(...checksAlone(report.scenarios), ...boundCosts(report.scenarios), ...v2AgainstV1(report.scenarios));
	if (report.upstashRoundTrip) lines.push(`One local Upstash round trip (SET NX through the local server to redis-server): p50 ${report.upstashRoundTrip.p50Ms.toFixed(2)} ms, p99 ${report.upstashRoundTrip.p99Ms.toFixed(2)} ms.`);
	if (report.ingestCapacity) {
		const perSec = report.ingestCapacity.perSec;
		lines.push(
			`One metrics Durable Object applied ${perSec.toFixed(0)} full-size ingests per second (${report.ingestCapacity.concurrency} callers, through Miniflare from Node): at METRICS_FLUSH_MS=10000 that is about ${Math.floor((perSec * 10_000) / 1000)} busy isolates per shard.`,
		);
	}
	if (report.neighbour) {
		const n = report.neighbour;
		lines.push(
			`A valid client during a bad-signature flood at ${n.floodRate} req/s: p50 ${n.duringP50Ms.toFixed(2)} ms (alone ${n.aloneP50Ms.toFixed(2)} ms), p99 ${n.duringP99Ms.toFixed(2)} ms (alone ${n.aloneP99Ms.toFixed(2)} ms).`,
		);
	}
	if (report.metricsScrape) lines.push(`/metrics through the Durable Object: p50 ${report.metricsScrape.p50Ms.toFixed(2)} ms, p99 ${report.metricsScrape.p99Ms.toFixed(2)} ms.`);
	for (const m of report.memoryStore ?? []) {
		lines.push(`Memory store, ${m.keys} distinct keys with REPLAY_MEMORY_MAX_KEYS=${m.bound}: ${m.storedKeys} kept, ${m.refused} refused, about ${m.heapBytesPerKey} bytes of heap per kept key.`);
	}
	for (const p of report.profiles) {
		lines.push(
			"",
			`CPU profile of ${p.scenario} (workerd's inspector, 100 us sampling; ${p.requests} requests, ${p.busyMs.toFixed(0)} ms of JavaScript-thread time, ${((1000 * p.busyMs) / Math.max(1, p.requests)).toFixed(0)} us per request; ${p.file}):`,
			"",
			"| function (self time) | ms | % of busy |",
			"|---|---:|---:|",
			...p.top.map((entry) => `| ${entry.fn.replaceAll("|", "\\|")} | ${entry.selfMs.toFixed(0)} | ${entry.selfPercent.toFixed(1)} |`),
		);
	}
	return `${lines.join("\n")}\n`;
}

/**
 * What each stream bound costs beside the default (the origin's body handed to the runtime), per
 * stream and per event (the events and the start and done lines), from rows of the same run.
 */
export function boundCosts(scenarios: readonly Pick<ScenarioResult, "name" | "cpuUsPerRequest">[]): string[] {
	const cpu = (name: string) => scenarios.find((s) => s.name === name)?.cpuUsPerRequest ?? null;
	const lines: string[] = [];
	for (const [events, suffix] of [[200, ""], [2000, "-2k"]] as const) {
		const base = cpu(`memory-ndjson${suffix}`);
		for (const [what, bound] of [["The deadline (ORIGIN_STREAM_MAX_MS)", "deadline"], ["The idle cut (ORIGIN_IDLE_MS)", "idle"]] as const) {
			const name = `memory-ndjson-${bound}${suffix}`;
			const withBound = cpu(name);
			if (base === null || withBound === null) continue;
			const extra = withBound - base;
			lines.push(
				`${what}, ${events} events: ${withBound.toFixed(0)} us against ${base.toFixed(0)} us per stream, ${extra.toFixed(0)} us more per stream, ${(extra / (events + 2)).toFixed(1)} us per event (${name} against memory-ndjson${suffix}).`,
			);
		}
	}
	return lines;
}

/** Scheme v2's CPU per request as a ratio to v1's, measured in the same run. */
/** The checks alone, written bare, beside the floor and the gateway row they sit between. */
const CHECKS_ALONE = [
	{ what: "1 KiB POST", checks: "floor-verifying-1k", floor: "floor-buffering-1k", gateway: "memory-1k" },
	{ what: "200-event stream", checks: "floor-verifying-ndjson", floor: "floor-streaming-ndjson", gateway: "memory-ndjson" },
	{ what: "2,000-event stream", checks: "floor-verifying-ndjson-2k", floor: "floor-streaming-ndjson-2k", gateway: "memory-ndjson-2k" },
] as const;

/**
 * Where a goal's gap lies: the checks alone, written bare (`floor-verifying`), against the floor,
 * and the gateway against them; the median of the rounds' ratios, each round's after it.
 */
export function checksAlone(scenarios: readonly Pick<ScenarioResult, "name" | "cpuUsPerRound">[]): string[] {
	const rounds = (name: string) => scenarios.find((s) => s.name === name)?.cpuUsPerRound;
	const pair = (of: string, against: string) => {
		const ratios = roundRatios(rounds(of), rounds(against));
		return ratios.length === 0 ? null : `${median(ratios).toFixed(2)}x (${ratios.map((r) => r.toFixed(2)).join(", ")})`;
	};
	const lines: string[] = [];
	for (const { what, checks, floor, gateway } of CHECKS_ALONE) {
		const bare = pair(checks, floor);
		if (bare === null) continue;
		const rest = pair(gateway, checks);
		lines.push(`${what}, the checks alone, written bare (${checks} against ${floor}): ${bare}${rest === null ? "" : `; the gateway against them (${gateway} against ${checks}): ${rest}`}.`);
	}
	return lines;
}

function v2AgainstV1(scenarios: readonly ScenarioResult[]): string[] {
	const cpu = (name: string) => scenarios.find((s) => s.name === name)?.cpuUsPerRequest ?? null;
	const lines: string[] = [];
	for (const [what, v2, v1] of [["Bad-signature flood, 256 KiB bodies, per rejected request", "v2-bad-256k", "v1-bad-256k"], ["Accepted, 1 KiB bodies, per request", "v2-ok-1k", "memory-1k"]] as const) {
		const a = cpu(v2);
		const b = cpu(v1);
		if (a !== null && b !== null && b > 0) lines.push(`Scheme v2 against v1, ${what}: ${(a / b).toFixed(2)} x v1's CPU (${v2} against ${v1}).`);
	}
	return lines;
}
