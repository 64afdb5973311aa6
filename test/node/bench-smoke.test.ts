import { describe, expect, it } from "vitest";
import { boundCosts, checkGoals, checksAlone, formatReport, roundRatios } from "../../scripts/bench/report.ts";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { formatLimitsReport, type LimitsScenarioResult } from "../../scripts/bench/limits.ts";
import { inRoundOrder, load } from "../../scripts/bench/load.ts";
import { assertLoadableTogether, runBench } from "../../scripts/bench/run.ts";
import { scenarioNamed } from "../../scripts/bench/scenarios.ts";
import { SECRET, signHeaders } from "../../scripts/bench/requests.ts";
import floorVerifying from "../../scripts/bench/workers/floor-verifying.ts";
import { available } from "./helpers/services.ts";

// Not a benchmark: one short run, so the harness cannot rot. No timing is asserted.
describe.skipIf(!available("redis-server", "redis-server"))("npm run bench (a short smoke run)", () => {
	it("produces well-formed figures, and exactly one Upstash call per accepted request, none per rejected one", async () => {
		const report = await runBench({
			durationSec: 1,
			rounds: 1,
			connections: 4,
			scenarios: ["floor-buffering-1k", "upstash-1k", "rejected-flood", "upstash-budget-1k"],
			memoryStore: false,
			pinCpus: false,
			scrapes: 0,
			profile: [],
			log: () => {},
		});
		expect(report.scenarios.map((s) => s.name)).toEqual(["floor-buffering-1k", "upstash-1k", "rejected-flood", "upstash-budget-1k"]);
		for (const scenario of report.scenarios) {
			expect(scenario.requests).toBeGreaterThan(0);
			for (const figure of [scenario.requestsPerSec, scenario.cpuUsPerRequest!, scenario.latencyP50Ms, scenario.latencyP99Ms, scenario.loadedP99Ms]) {
				expect(Number.isFinite(figure) && figure > 0).toBe(true);
			}
			// One round: its own figure, the one the paired ratios are taken of.
			expect(scenario.cpuUsPerRound).toEqual([scenario.cpuUsPerRequest]);
		}
		const [floor, accepted, rejected, budgeted] = report.scenarios;
		// A budget: one command in (its reservation in the limits script); the origin's reports ride on later claims, but for the last few.
		expect(Object.keys(budgeted!.statusCounts)).toEqual(["200"]);
		expect(budgeted!.upstashCalls!.calls).toBeGreaterThanOrEqual(budgeted!.upstashCalls!.requests);
		// One client: alone, at most its last settle of the round and of the warm-up (a few to spare); all alone would be one per request.
		expect(budgeted!.upstashCalls!.calls - budgeted!.upstashCalls!.requests).toBeLessThanOrEqual(5);
		expect(budgeted!.upstashCalls!.requests).toBeGreaterThan(20);
		expect(floor!.ingests).toBeNull();
		expect(Object.keys(floor!.statusCounts)).toEqual(["200"]);
		for (const gateway of [accepted!, rejected!]) expect(gateway.ingests!.count).toBeLessThanOrEqual(gateway.ingests!.bound);
		expect(Object.keys(accepted!.statusCounts)).toEqual(["200"]);
		expect(accepted!.upstashCalls!.requests).toBeGreaterThan(0);
		expect(accepted!.upstashCalls!.calls).toBe(accepted!.upstashCalls!.requests);
		expect(rejected!.upstashCalls!.requests).toBeGreaterThan(0);
		expect(rejected!.upstashCalls!.calls).toBe(0);
		expect(Object.keys(rejected!.statusCounts).sort()).toEqual(["401", "403", "408"]);
		expect(report.upstashRoundTrip!.p50Ms).toBeGreaterThan(0);

		const table = formatReport(report);
		expect(table).toMatch(/\| upstash-1k \| gateway-upstash \| \d+ \| \d+\.\d\d \(floor-buffering-1k\) \| \d+ \|/);
		// No goal's scenarios both ran: every goal says so, none prints a ratio.
		expect(checkGoals(report).map((goal) => goal.ratio)).toEqual([null, null, null, null, null, null, null]);
		expect(table).toContain("| 1 KiB POST: CPU per forwarded request at most 1.10 x the buffering floor (memory-1k / floor-buffering-1k) | - | - | - | not measured (needs memory-1k and floor-buffering-1k) |");
	});

	it("computes each goal from the two rows of one run, and prints - for a figure not measured", () => {
		const row = (name: string, cpuUsPerRequest: number | null, requestsPerSec: number) =>
			({ name, target: name.startsWith("floor-") ? "floor-buffering" : "gateway-memory", cpuUsPerRequest, requestsPerSec }) as never;
		const goals = checkGoals({
			scenarios: [
				row("memory-1k", 660, 900),
				row("floor-buffering-1k", 600, 1000),
				row("floor-streaming-1k", null, 1200),
				row("memory-ndjson-2k", 70000, 5),
				row("floor-streaming-ndjson-2k", 50000, 5),
				row("floor-streaming-ndjson", 5000, 60),
				row("memory-ndjson-budget", 5600, 60),
			],
		});
		expect(goals.map(({ ratio, met }) => [ratio === null ? null : Number(ratio.toFixed(3)), met])).toEqual([
			[1.1, true],
			[0.75, false],
			[null, null],
			// The default 200-event row did not run; the 2,000-event ones and the budgeted stream did.
			[null, null],
			[1.4, false],
			[1.12, false],
			[null, null],
		]);
	});

	it("judges a CPU goal by the median of the rounds' own ratios, the ratio of the medians beside it; rows whose rounds do not pair fall back to the medians", () => {
		const row = (name: string, cpuUsPerRequest: number, cpuUsPerRound?: number[]) =>
			({ name, target: name.startsWith("floor-") ? "floor-streaming" : "gateway-memory", cpuUsPerRequest, cpuUsPerRound, requestsPerSec: 1 }) as never;
		// A machine that drifted: the floor's slow round met the gateway's slow round, so each round's ratio is steady.
		const [, , , stream200, stream2k] = checkGoals({
			scenarios: [row("floor-streaming-ndjson", 5000, [4000, 5000, 7000]), row("memory-ndjson", 5000, [4200, 6000, 7140]), row("floor-streaming-ndjson-2k", 100, [100, 100]), row("memory-ndjson-2k", 120, [120, 120, 120])],
		});
		expect(stream200!.rounds.map((r) => Number(r.toFixed(3)))).toEqual([1.05, 1.2, 1.02]);
		expect([stream200!.ratio, stream200!.ofMedians, stream200!.met]).toEqual([1.05, 1, true]);
		expect(roundRatios([1, 2], [2])).toEqual([]);
		expect([stream2k!.rounds, stream2k!.ratio, stream2k!.met]).toEqual([[], 1.2, false]);
		expect(roundRatios(undefined, [1])).toEqual([]);
	});

	it("pairs a single round too, drops a round against nothing, never judges a throughput goal by CPU rounds, and prints the judged ratio, the medians' and each round's", () => {
		const row = (name: string, cpuUsPerRequest: number, cpuUsPerRound: number[], requestsPerSec = 1) =>
			({ name, target: name.startsWith("floor-") ? "floor-buffering" : "gateway-memory", cpuUsPerRequest, cpuUsPerRound, requestsPerSec, latencyP50Ms: 1, latencyP99Ms: 1, loadedP99Ms: 1, statusCounts: {}, upstashCallsPerRequest: null, ingests: null }) as never;
		const [cpu, throughput] = checkGoals({ scenarios: [row("floor-buffering-1k", 100, [100]), row("memory-1k", 100, [108], 850), row("floor-streaming-1k", 100, [200], 1000)] });
		expect([cpu!.rounds, cpu!.ratio, cpu!.ofMedians, cpu!.met]).toEqual([[1.08], 1.08, 1, true]);
		expect([throughput!.rounds, throughput!.ratio, throughput!.met]).toEqual([[], 0.85, true]);
		expect(roundRatios([1, 2, 3], [0, 4, 6])).toEqual([0.5, 0.5]);

		const report = {
			machine: { cpus: 2, node: "v22", date: "a day", pinned: false },
			durationSec: 1,
			rounds: 3,
			together: false,
			connections: 1,
			metricsFlushMs: 1000,
			targets: [],
			// The memory row's median is 1.2 x the floor's; its rounds' ratios 1.2, 1.08 and 1.
			scenarios: [row("floor-buffering-1k", 100, [100, 100, 200]), row("memory-1k", 120, [120, 108, 200])],
			upstashRoundTrip: null,
			metricsScrape: null,
			ingestCapacity: null,
			neighbour: null,
			memoryStore: null,
			profiles: [],
		};
		expect(formatReport(report)).toContain("| 1 KiB POST: CPU per forwarded request at most 1.10 x the buffering floor (memory-1k / floor-buffering-1k) | 1.08 | 1.20 | 1.20, 1.08, 1.00 | met |");
		expect(formatReport(report)).toContain("Each round loaded one scenario after another, the order turning each round.");
		expect(formatReport({ ...report, together: true })).toContain("Loaded together (--together): each round loaded every scenario at once");
	});

	it("--together refuses two scenarios on one Worker, and two on Upstash, before anything starts", async () => {
		expect(() => assertLoadableTogether(["memory-1k", "memory-ndjson"].map(scenarioNamed))).toThrow("--together: memory-1k and memory-ndjson run on the same Worker (gateway-memory): run them apart");
		expect(() => assertLoadableTogether(["upstash-1k", "upstash-limits-1k"].map(scenarioNamed))).toThrow("--together: upstash-1k and upstash-limits-1k would share the Upstash server's command count: run them apart");
		expect(() => assertLoadableTogether(["floor-buffering-1k", "memory-1k", "upstash-1k"].map(scenarioNamed))).not.toThrow();
		const log: string[] = [];
		await expect(runBench({ durationSec: 1, rounds: 1, together: true, connections: 1, scenarios: ["memory-1k", "memory-256k"], memoryStore: false, pinCpus: false, scrapes: 0, profile: [], log: (line) => log.push(line) })).rejects.toThrow("run on the same Worker");
		expect(log).toEqual([]);
	});

	it("--together loads a round's rows at once, each figure from its own workerd", async () => {
		const log: string[] = [];
		const report = await runBench({ durationSec: 1, rounds: 2, together: true, connections: 2, scenarios: ["floor-buffering-1k", "memory-1k"], memoryStore: false, pinCpus: false, scrapes: 0, profile: [], log: (line) => log.push(line) });
		expect(report.together).toBe(true);
		expect(log.filter((line) => line.startsWith("round "))).toEqual([
			"round 1/2: floor-buffering-1k for 1 s, memory-1k for 1 s, all at once, 2 connections each ...",
			"round 2/2: floor-buffering-1k for 1 s, memory-1k for 1 s, all at once, 2 connections each ...",
		]);
		const [floor, gateway] = report.scenarios;
		for (const row of [floor!, gateway!]) {
			expect(Object.keys(row.statusCounts)).toEqual(["200"]);
			expect(row.cpuUsPerRound).toHaveLength(2);
			for (const cpu of row.cpuUsPerRound!) expect(cpu).toBeGreaterThan(0);
		}
		// Each row's own workerd: the gateway's figures are not the floor's.
		expect(gateway!.cpuUsPerRound).not.toEqual(floor!.cpuUsPerRound);
		expect(gateway!.ingests!.count).toBeLessThanOrEqual(gateway!.ingests!.bound);
		expect(formatReport(report)).toContain("Loaded together (--together)");
	});

	it("the limits bench pairs the budget's rounds with rpm+rpd's: the median of their ratios, each ratio, the ratio of the medians", () => {
		const result = (name: LimitsScenarioResult["name"], cpuMsPerRequest: number, cpuMsPerRound: number[]): LimitsScenarioResult => ({
			name,
			requestsPerSec: 1000,
			cpuMsPerRequest,
			cpuMsPerRound,
			upstashCommandsPerRequest: 1,
			commands: {},
			statusCounts: {},
			inProcessCpuMsPerRequest: 0.1,
		});
		const report = formatLimitsReport([result("rpm+rpd", 0.2, [0.25, 0.2, 0.1]), result("rpm+rpd+budget", 0.24, [0.3, 0.21, 0.1])]);
		expect(report).toContain("(rpm+rpd+budget): workerd CPU 1.050x (the median of the rounds' ratios: 1.200, 1.050, 1.000; the ratio of the medians 1.200x)");
	});

	it("says what the checks alone cost against the buffering floor, and the gateway against them, round by round", () => {
		const row = (name: string, cpuUsPerRound: number[]) => ({ name, cpuUsPerRound });
		const floor = row("floor-buffering-1k", [100, 200, 100]);
		const checks = row("floor-verifying-1k", [110, 240, 115]);
		expect(checksAlone([floor, checks, row("memory-1k", [132, 240, 161])])).toEqual([
			"1 KiB POST, the checks alone, written bare (floor-verifying-1k against floor-buffering-1k): 1.15x (1.10, 1.20, 1.15); the gateway against them (memory-1k against floor-verifying-1k): 1.20x (1.20, 1.00, 1.40).",
		]);
		expect(checksAlone([floor, checks])).toEqual(["1 KiB POST, the checks alone, written bare (floor-verifying-1k against floor-buffering-1k): 1.15x (1.10, 1.20, 1.15)."]);
		expect(checksAlone([floor, row("memory-1k", [1, 2, 3])])).toEqual([]);
		// Each stream length against its own floor, never another's.
		expect(checksAlone([row("floor-streaming-ndjson-2k", [1000]), row("floor-verifying-ndjson-2k", [1050]), row("floor-streaming-ndjson", [100]), row("floor-verifying-ndjson", [104])])).toEqual([
			"200-event stream, the checks alone, written bare (floor-verifying-ndjson against floor-streaming-ndjson): 1.04x (1.04).",
			"2,000-event stream, the checks alone, written bare (floor-verifying-ndjson-2k against floor-streaming-ndjson-2k): 1.05x (1.05).",
		]);
	});

	it("each round starts one scenario further along", () => {
		expect([1, 2, 3, 4, 5].map((round) => inRoundOrder(["a", "b", "c"], round).join(""))).toEqual(["abc", "bca", "cab", "abc", "bca"]);
	});

	it("reports each stream bound's cost beside the default, per stream and per event, from rows of one run", () => {
		const row = (name: string, cpuUsPerRequest: number | null) => ({ name, cpuUsPerRequest });
		expect(
			boundCosts([row("memory-ndjson", 5000), row("memory-ndjson-deadline", 6010), row("memory-ndjson-idle", null), row("memory-ndjson-2k", 50000), row("memory-ndjson-idle-2k", 150200)]),
		).toEqual([
			"The deadline (ORIGIN_STREAM_MAX_MS), 200 events: 6010 us against 5000 us per stream, 1010 us more per stream, 5.0 us per event (memory-ndjson-deadline against memory-ndjson).",
			"The idle cut (ORIGIN_IDLE_MS), 2000 events: 150200 us against 50000 us per stream, 100200 us more per stream, 50.0 us per event (memory-ndjson-idle-2k against memory-ndjson-2k).",
		]);
	});

	it("a stream row's round is a fixed number of whole answers: each one to its end, none cut off", async () => {
		let started = 0;
		let finished = 0;
		// Each answer written in two parts, 50 ms apart: a round cut at its end would leave some half-sent.
		const server = createServer((_, response) => {
			started++;
			response.write("start\n");
			setTimeout(() => {
				finished++;
				response.end("done\n");
			}, 50);
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		try {
			const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
			const scenario = { name: "whole", target: "floor-streaming" as const, request: () => ({ method: "GET" as const, path: "/", headers: {} }), probeStatus: 200, requestsPerRound: 12 };
			const result = await load(url, scenario, { connections: 4, durationSec: 1, whole: true });
			expect([result.requests.total, started, finished]).toEqual([12, 12, 12]);
		} finally {
			server.close();
		}
	});

	it("the verifying floor checks what it claims to: a signed request goes on once; a wrong signature, a skewed clock and a replay do not", async () => {
		const forwarded: string[] = [];
		const server = createServer((request, response) => {
			forwarded.push(request.headers["x-signature"] as string);
			response.end("ok");
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		try {
			const env = { ORIGIN_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, HMAC_SECRET: SECRET };
			const send = (headers: Record<string, string>, body = "{}") => floorVerifying.fetch(new Request("http://floor.test/agent/chat", { method: "POST", headers, body }) as never, env);
			const good = signHeaders("POST", "/agent/chat", "{}", Date.now());
			expect((await send(good)).status).toBe(200);
			expect((await send(good)).status).toBe(409);
			expect((await send(signHeaders("POST", "/agent/chat", "{}", Date.now(), "not-the-secret"))).status).toBe(403);
			expect((await send(signHeaders("POST", "/agent/chat", "{}", Date.now() - 301_000))).status).toBe(403);
			expect((await send(signHeaders("POST", "/agent/chat", "{}", Date.now()), '{"other":1}')).status).toBe(403);
			// A GET: the hash of no bytes, known without a digest.
			const get = signHeaders("GET", "/agent/stream", "", Date.now());
			expect((await floorVerifying.fetch(new Request("http://floor.test/agent/stream?tokens=2", { headers: get }) as never, env)).status).toBe(200);
			expect(forwarded).toEqual([good["x-signature"], get["x-signature"]]);
		} finally {
			server.close();
		}
	});
});
