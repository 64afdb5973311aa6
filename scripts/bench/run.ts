// Runs the benchmark: every target in a workerd of its own, scenarios in interleaved rounds,
// workerd's CPU time per request from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { cpus } from "node:os";
import type autocannon from "autocannon";
import { startGateway, type RunningGateway } from "../lib/gateway-runner.ts";
import { freePort, startRedisServer, waitForPort, type RedisProcess } from "../lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "../lib/upstash-server.ts";
import { cpuMicros, pinProcesses, workerdPids } from "./cpu.ts";
import {
	measureIngestCapacity,
	measureMemoryStore,
	measureNeighbour,
	measureScrapes,
	measureUpstashRoundTrip,
	METRICS_TOKEN,
	readCounters,
	UPSTASH_TOKEN,
	type MemoryStoreFigures,
	type NeighbourFigures,
} from "./extras.ts";
import { inRoundOrder, load, median, sequentialLatency, statusCounts } from "./load.ts";
import { profileWhile, type ProfileSummary } from "./profile.ts";
import { SECRET } from "./requests.ts";
import { scenarioNamed, type Scenario } from "./scenarios.ts";
import { buildTargets, TARGETS, type TargetName } from "./targets.ts";

export interface BenchOptions {
	durationSec: number;
	/** Rounds over all scenarios; each figure is the median of its rounds. */
	rounds: number;
	/**
	 * Load every scenario of a round at once, each on its own Worker (none may share one, at most
	 * one on Upstash): each row's CPU is still its own workerd's, and the rows share the machine's
	 * every moment, not only its minute. Without it, one scenario after another.
	 */
	together?: boolean;
	connections: number;
	/** Scenario names (scripts/bench/scenarios.ts). */
	scenarios: readonly string[];
	/** Also measure the memory store with a million distinct keys. */
	memoryStore: boolean;
	/** Give workerd a CPU of its own (the process running the benchmark is pinned too). */
	pinCpus: boolean;
	/** Sequential scrapes for the `/metrics` latency figure (0: skip it and the other figures beside the table). */
	scrapes: number;
	/** Scenarios to profile through workerd's inspector after the rounds, in a workerd of their own. */
	profile: readonly string[];
	log: (line: string) => void;
}

export interface ScenarioResult {
	name: string;
	target: TargetName;
	requests: number;
	/** Median over the rounds of autocannon's average requests per second. */
	requestsPerSec: number;
	/** Median over the rounds of workerd's CPU time (user + system) per answered request; null without /proc. */
	cpuUsPerRequest: number | null;
	/** The same figure of each round, in round order (every round runs every scenario once), for paired ratios. */
	cpuUsPerRound?: number[];
	/** One request at a time, after the load: what the Worker adds, without queueing. */
	latencyP50Ms: number;
	latencyP99Ms: number;
	/** Median over the rounds of autocannon's p99 under load. */
	loadedP99Ms: number;
	statusCounts: Record<string, number>;
	/**
	 * Upstash HTTP calls (counted by the Upstash server) per request the gateway counted as
	 * accepted, or for a flood as rejected (Upstash targets only).
	 */
	upstashCallsPerRequest: number | null;
	upstashCalls: { calls: number; requests: number } | null;
	/** Ingest RPCs to the metrics Durable Object per second, from the gateway's own flush counter. */
	ingestPerSec: number | null;
	/**
	 * Background ingests during the load, and the most that "one per METRICS_FLUSH_MS" allows:
	 * per round, one at the first request and one per full interval after it.
	 */
	ingests: { count: number; bound: number } | null;
}

export interface BenchReport {
	machine: { cpus: number; node: string; date: string; pinned: boolean };
	durationSec: number;
	rounds: number;
	/** The scenarios of a round were loaded at once (`--together`), not one after another. */
	together: boolean;
	connections: number;
	metricsFlushMs: number;
	targets: { name: TargetName; about: string }[];
	scenarios: ScenarioResult[];
	/** p50 and p99 of one SET through the local Upstash server, measured alone. */
	upstashRoundTrip: { p50Ms: number; p99Ms: number } | null;
	metricsScrape: { p50Ms: number; p99Ms: number } | null;
	/** Ingests of a full-size batch one aggregator object applied per second, called from Node through Miniflare. */
	ingestCapacity: { perSec: number; concurrency: number } | null;
	neighbour: NeighbourFigures | null;
	memoryStore: MemoryStoreFigures[] | null;
	profiles: ProfileSummary[];
}

/**
 * The shipped default: a gateway row runs the configuration as it ships. (At 1,000 a stream of
 * 200 events, a few dozen a second per isolate, paid about 60 us more for the flushes.)
 */
const METRICS_FLUSH_MS = 10_000;

interface Running {
	gateway: RunningGateway;
	/** workerd's process id, for its CPU time. */
	pid: number | null;
}

/** Runs the benchmark: every target in its own workerd, one load generator, rounds that alternate. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
	const { log } = options;
	const scenarios = options.scenarios.map(scenarioNamed);
	if (options.together === true) assertLoadableTogether(scenarios);
	const targetNames = [...new Set([...scenarios, ...options.profile.map(scenarioNamed)].map((scenario) => scenario.target))];
	log(`building ${targetNames.join(", ")} ...`);
	const scripts = buildTargets(targetNames);

	const originPort = await freePort();
	const origin = spawnOrigin(originPort);
	let redis: RedisProcess | null = null;
	let upstash: UpstashServer | null = null;
	const results: ScenarioResult[] = [];
	let pinned = false;
	let upstashRoundTrip: BenchReport["upstashRoundTrip"] = null;
	let metricsScrape: BenchReport["metricsScrape"] = null;
	let ingestCapacity: BenchReport["ingestCapacity"] = null;
	let neighbour: BenchReport["neighbour"] = null;
	const profiles: ProfileSummary[] = [];
	try {
		await waitForPort(originPort);
		const originUrl = `http://127.0.0.1:${originPort}`;
		if (targetNames.some((name) => TARGETS[name].upstash)) {
			redis = await startRedisServer();
			upstash = await startUpstashServer({ redisPort: redis.port, token: UPSTASH_TOKEN });
			upstashRoundTrip = await measureUpstashRoundTrip(upstash);
		}
		const bindingsFor = (name: TargetName): Record<string, string> => ({
			ENVIRONMENT: "production",
			ORIGIN_URL: originUrl,
			HMAC_SECRET: SECRET,
			METRICS_TOKEN,
			METRICS_FLUSH_MS: String(METRICS_FLUSH_MS),
			ORIGIN_TOKEN: "bench",
			...(TARGETS[name].upstash && upstash !== null ? { UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: UPSTASH_TOKEN, REPLAY_TIMEOUT_MS: "1000" } : {}),
			...TARGETS[name].bindings,
		});
		const start = async (name: TargetName, inspect = false): Promise<Running> => {
			const before = new Set(workerdPids());
			const gateway = await startGateway(bindingsFor(name), { scriptPath: scripts.get(name)!, metricsAggregator: !TARGETS[name].floor, ...(inspect ? { inspectorPort: 0 } : {}) });
			const started = workerdPids().filter((pid) => !before.has(pid));
			return { gateway, pid: started.length === 1 ? started[0]! : null };
		};

		// Every target runs for the whole benchmark; rounds alternate between the scenarios, so
		// a noisy moment of the machine spreads over all of them alike.
		const running = new Map<TargetName, Running>();
		for (const name of targetNames.filter((target) => scenarios.some((scenario) => scenario.target === target))) running.set(name, await start(name));
		pinned = options.pinCpus && pinProcesses(workerdPids(), [origin.pid]);
		if (pinned) log("pinned workerd to CPU 1, the load generator and the origin to CPU 0");
		try {
			interface Totals {
				rounds: autocannon.Result[];
				cpuPerRequest: number[];
				upstashCalls: number;
				decided: number;
				ingests: number;
				ingestBound: number;
				seconds: number;
			}
			const totals = new Map<string, Totals>();
			for (const scenario of scenarios) {
				log(`warming up ${scenario.name} ...`);
				await load(running.get(scenario.target)!.gateway.url, scenario, { connections: options.connections, durationSec: 1 });
				totals.set(scenario.name, { rounds: [], cpuPerRequest: [], upstashCalls: 0, decided: 0, ingests: 0, ingestBound: 0, seconds: 0 });
			}
			/** What a round of `scenario` needs from before its load: the counters, the CPU time, the clock. */
			const begin = async (scenario: Scenario) => {
				const { gateway, pid } = running.get(scenario.target)!;
				upstash?.resetStats();
				const counters = TARGETS[scenario.target].gateway ? await readCounters(gateway) : null;
				return { counters, cpuBefore: pid === null ? null : cpuMicros(pid) };
			};
			/** One round's load of `scenario`, and how long it took. */
			const timedLoad = async (scenario: Scenario) => {
				const started = performance.now();
				const result = await load(running.get(scenario.target)!.gateway.url, scenario, { ...options, whole: true });
				return { result, seconds: (performance.now() - started) / 1000 };
			};
			/** Adds one round's figures; the load has ended and the requests still in flight with it. */
			const finish = async (scenario: Scenario, begun: Awaited<ReturnType<typeof begin>>, { result, seconds }: Awaited<ReturnType<typeof timedLoad>>) => {
				const { gateway, pid } = running.get(scenario.target)!;
				const measured = totals.get(scenario.name)!;
				const cpuAfter = pid === null ? null : cpuMicros(pid);
				measured.seconds += seconds;
				measured.rounds.push(result);
				if (begun.cpuBefore !== null && cpuAfter !== null && result.requests.total > 0) measured.cpuPerRequest.push((cpuAfter - begun.cpuBefore) / result.requests.total);
				if (begun.counters !== null) {
					const after = await readCounters(gateway);
					// The scrape before the load counts one flush of its own.
					measured.ingests += Math.max(0, after.flushes - begun.counters.flushes - 1);
					measured.ingestBound += 1 + Math.floor((seconds * 1000) / METRICS_FLUSH_MS);
					measured.decided += scenario.counts === "rejected" ? after.rejected - begun.counters.rejected : after.accepted - begun.counters.accepted;
				}
				// Every command: a plain claim is a `SET`, a limited one an `EVALSHA` (a budget's settle alone one more).
				for (const count of upstash?.stats.commands.values() ?? []) measured.upstashCalls += count;
			};
			const length = (scenario: Scenario) => (scenario.requestsPerRound === undefined ? `for ${options.durationSec} s` : `${scenario.requestsPerRound} requests, each to its end,`);
			// Requests still in flight when a load stopped finish before the counts are read.
			const drained = () => new Promise((resolve) => setTimeout(resolve, 300));
			// The warm-ups' last requests finish before any count is taken.
			await drained();
			for (let round = 1; round <= options.rounds; round++) {
				if (options.together) {
					log(`round ${round}/${options.rounds}: ${scenarios.map((scenario) => `${scenario.name} ${length(scenario)}`).join(", ")}, all at once, ${options.connections} connections each ...`);
					const begun = await Promise.all(scenarios.map(begin));
					const loads = await Promise.all(scenarios.map(timedLoad));
					await drained();
					for (const [i, scenario] of scenarios.entries()) await finish(scenario, begun[i]!, loads[i]!);
					continue;
				}
				for (const scenario of inRoundOrder(scenarios, round)) {
					log(`round ${round}/${options.rounds}: ${scenario.name} ${length(scenario)} with ${options.connections} connections ...`);
					const begun = await begin(scenario);
					const loaded = await timedLoad(scenario);
					await drained();
					await finish(scenario, begun, loaded);
				}
			}
			for (const scenario of scenarios) {
				const { gateway } = running.get(scenario.target)!;
				const target = TARGETS[scenario.target];
				const measured = totals.get(scenario.name)!;
				log(`measuring the latency of ${scenario.name}, one request at a time ...`);
				const latency = await sequentialLatency(gateway.url, scenario);
				results.push({
					name: scenario.name,
					target: scenario.target,
					requests: measured.rounds.reduce((sum, result) => sum + result.requests.total, 0),
					requestsPerSec: median(measured.rounds.map((result) => result.requests.average)),
					cpuUsPerRequest: measured.cpuPerRequest.length === 0 ? null : median(measured.cpuPerRequest),
					cpuUsPerRound: [...measured.cpuPerRequest],
					latencyP50Ms: latency.p50Ms,
					latencyP99Ms: latency.p99Ms,
					loadedP99Ms: median(measured.rounds.map((result) => result.latency.p99)),
					statusCounts: mergeCounts(measured.rounds.map(statusCounts)),
					upstashCallsPerRequest: target.upstash && measured.decided > 0 ? measured.upstashCalls / measured.decided : null,
					upstashCalls: target.upstash ? { calls: measured.upstashCalls, requests: measured.decided } : null,
					ingestPerSec: target.gateway ? measured.ingests / measured.seconds : null,
					ingests: target.gateway ? { count: measured.ingests, bound: measured.ingestBound } : null,
				});
				if (scenario.name === "memory-1k" && options.scrapes > 0) {
					metricsScrape = await measureScrapes(gateway, options.scrapes);
					log("measuring what one metrics Durable Object takes ...");
					ingestCapacity = await measureIngestCapacity(gateway);
					log("measuring a valid client's latency during a flood of bad signatures ...");
					neighbour = await measureNeighbour(gateway, scenario, options.durationSec);
				}
			}
		} finally {
			await Promise.all([...running.values()].map(({ gateway }) => gateway.close()));
		}

		for (const scenario of options.profile.map(scenarioNamed)) {
			log(`profiling ${scenario.name} through workerd's inspector for ${options.durationSec} s ...`);
			profiles.push(await profileScenario(scenario, await start(scenario.target, true), options, pinned));
		}
	} finally {
		origin.kill("SIGKILL");
		await upstash?.close();
		await redis?.stop();
	}

	return {
		machine: { cpus: cpus().length, node: process.version, date: new Date().toISOString(), pinned },
		durationSec: options.durationSec,
		rounds: options.rounds,
		together: options.together === true,
		connections: options.connections,
		metricsFlushMs: METRICS_FLUSH_MS,
		targets: [...new Set(results.map((result) => result.target))].map((name) => ({ name, about: TARGETS[name].about })),
		scenarios: results,
		upstashRoundTrip,
		metricsScrape,
		ingestCapacity,
		neighbour,
		memoryStore: options.memoryStore ? await measureMemoryStore() : null,
		profiles,
	};
}

/** A fresh workerd with its inspector open, warmed up, then profiled under the scenario's load. */
async function profileScenario(scenario: Scenario, { gateway, pid }: Running, options: BenchOptions, pin: boolean): Promise<ProfileSummary> {
	try {
		if (pin && pid !== null) pinProcesses([pid], []);
		await load(gateway.url, scenario, { connections: options.connections, durationSec: 1 });
		mkdirSync(".build/bench", { recursive: true });
		return await profileWhile(gateway, scenario.name, async () => (await load(gateway.url, scenario, options)).requests.total, { file: `.build/bench/${scenario.name}.cpuprofile` });
	} finally {
		await gateway.close();
	}
}

/** Scenarios loaded at once need a Worker each (CPU is read per workerd) and one Upstash count at most (it is the server's). */
export function assertLoadableTogether(scenarios: readonly Scenario[]): void {
	const seen = new Map<TargetName, string>();
	for (const scenario of scenarios) {
		const other = seen.get(scenario.target);
		if (other !== undefined) throw new Error(`--together: ${other} and ${scenario.name} run on the same Worker (${scenario.target}): run them apart`);
		seen.set(scenario.target, scenario.name);
	}
	const onUpstash = scenarios.filter((scenario) => TARGETS[scenario.target].upstash);
	if (onUpstash.length > 1) throw new Error(`--together: ${onUpstash.map((scenario) => scenario.name).join(" and ")} would share the Upstash server's command count: run them apart`);
}

function spawnOrigin(port: number): ChildProcess {
	// Its own process, so the origin does not share the load generator's thread.
	return spawn(process.execPath, ["scripts/demo-origin.ts", "--port", String(port)], { stdio: "ignore" });
}

function mergeCounts(all: Record<string, number>[]): Record<string, number> {
	const merged: Record<string, number> = {};
	for (const counts of all) for (const [key, value] of Object.entries(counts)) merged[key] = (merged[key] ?? 0) + value;
	return merged;
}
