// Per-client limits (issue 21): what CLIENT_LIMITS costs an accepted request.
//   npm run bench -- --only limits [--duration 5] [--rounds 3] [--connections 16]
// Gateways side by side, each the shipped bundle in a workerd of its own (Miniflare) on the
// local Upstash server and a redis-server: without CLIENT_LIMITS, with rpm and rpd, with
// concurrent as well, and with a token budget, its answers' usage reported and not (limits high
// enough never to refuse: this measures their cost, not their refusals), loaded one at a time,
// in turn within each round.
// For each: workerd's CPU per accepted request (user + system from /proc, median of the
// rounds), the Upstash commands per accepted request (counted by the Upstash server), and the
// Worker's own code's CPU per request in this process with a fake Upstash client.
import { spawn } from "node:child_process";
import autocannon from "autocannon";
import { bundleWorker } from "../lib/build.ts";
import { startGateway, type RunningGateway } from "../lib/gateway-runner.ts";
import { freePort, startRedisServer, waitForPort } from "../lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "../lib/upstash-server.ts";
import { cpuMicros, workerdPids } from "./cpu.ts";
import { inRoundOrder, median } from "./load.ts";
import { roundRatios } from "./report.ts";
import { chatBody, SECRET, signHeaders } from "./requests.ts";

const BUDGET = { "*": { rpm: 10_000, rpd: 1_000_000_000, daily_tokens: 1_000_000_000, monthly_tokens: 1_000_000_000, token_hold: 4096 } } as const;

export const LIMITS_SCENARIOS = {
	"no-limits": null,
	"rpm+rpd": { "*": { rpm: 10_000, rpd: 1_000_000_000 } },
	"rpm+rpd+concurrent": { "*": { rpm: 10_000, rpd: 1_000_000_000, concurrent: 1_000 } },
	// A token budget never spent (issue 30): the reservation rides in the same script. The demo
	// origin reports each answer's tokens by header, whose settle rides on the client's next claim
	// (alone only when none comes within a second); the `-unreported` row asks it not to
	// (`?report=none`): the reservation's own cost.
	"rpm+rpd+budget": BUDGET,
	"rpm+rpd+budget-unreported": BUDGET,
} as const;
/** The query each row's requests carry (the demo origin's knobs; v1 signs no query). */
const QUERIES: Partial<Record<LimitsScenarioName, string>> = { "rpm+rpd+budget-unreported": "?report=none" };
export type LimitsScenarioName = keyof typeof LIMITS_SCENARIOS;

export interface LimitsBenchOptions {
	durationSec: number;
	rounds: number;
	connections: number;
	/** Load a round's rows at once (each with its own local Upstash server, on the one redis-server), not one after another. */
	together?: boolean;
	/**
	 * Client ids the requests are spread over. A budget's settle rides on its client's next claim
	 * within a second: fewer clients, each one's next request sooner, however slow the machine.
	 * @default CLIENTS
	 */
	clients?: number;
	/** Requests per configuration and round of the in-process measurement. @default 1500 */
	inProcessRequests?: number;
	log: (line: string) => void;
}

export interface LimitsScenarioResult {
	name: LimitsScenarioName;
	requestsPerSec: number;
	/** workerd's CPU per accepted request, in milliseconds (median of the rounds). */
	cpuMsPerRequest: number;
	/** The same figure of each round, in round order (every round runs every scenario once), for paired ratios. */
	cpuMsPerRound: number[];
	/** Every Upstash command (SET, EVALSHA, EVAL, ZREM) per request the gateway counted as accepted, over all rounds. */
	upstashCommandsPerRequest: number;
	commands: Record<string, number>;
	statusCounts: Record<string, number>;
	/** The Worker's own code, in this process with a fake Upstash client: CPU per request (median). */
	inProcessCpuMsPerRequest: number;
}

const UPSTASH_TOKEN = "bench-limits-token";
/** Requests spread over this many client ids, as a gateway's traffic is. */
export const CLIENTS = 20;

function request(counter: number, clients: number, query = ""): { method: "POST"; path: string; headers: Record<string, string>; body: string } {
	const body = chatBody(1024, counter);
	// v1 does not sign X-Client-Id: the id is set after signing.
	const headers = { ...signHeaders("POST", "/agent/chat", body, Date.now()), "x-client-id": `bench-${counter % clients}` };
	return { method: "POST", path: `/agent/chat${query}`, headers, body };
}

/** Runs the gateways side by side, one per row: one row at a time (its order turning each round), or all at once (`together`). */
export async function runLimitsBench(options: LimitsBenchOptions): Promise<LimitsScenarioResult[]> {
	const { log, clients = CLIENTS } = options;
	if (!(Number.isInteger(clients) && clients > 0)) throw new Error(`clients must be a positive integer, not ${clients}`);
	if (process.platform !== "linux") throw new Error("the limits bench reads workerd's CPU time from /proc (Linux only)");
	log("bundling the gateway ...");
	const scriptPath = bundleWorker(".build/bench/gateway");
	const originPort = await freePort();
	const origin = spawn(process.execPath, ["scripts/demo-origin.ts", "--port", String(originPort)], { stdio: "ignore" });
	const redis = await startRedisServer();
	const names = Object.keys(LIMITS_SCENARIOS) as LimitsScenarioName[];
	const running: { name: LimitsScenarioName; gateway: RunningGateway; pids: number[]; upstash: UpstashServer }[] = [];
	// One Upstash server per row: each row's commands are its own, loaded alone or together.
	const upstashes: UpstashServer[] = [];
	let counter = 0;
	try {
		await waitForPort(originPort);
		for (const name of names) {
			const limits = LIMITS_SCENARIOS[name];
			const upstash = await startUpstashServer({ redisPort: redis.port, token: UPSTASH_TOKEN });
			upstashes.push(upstash);
			const before = new Set(workerdPids());
			const gateway = await startGateway(
				{
					ENVIRONMENT: "production",
					ORIGIN_URL: `http://127.0.0.1:${originPort}`,
					HMAC_SECRET: SECRET,
					METRICS_TOKEN: "bench",
					ORIGIN_TOKEN: "bench",
					UPSTASH_REDIS_REST_URL: upstash.url,
					UPSTASH_REDIS_REST_TOKEN: UPSTASH_TOKEN,
					REPLAY_TIMEOUT_MS: "1000",
					REDIS_REPLAY_PREFIX: `bench:${name}:`,
					...(limits === null ? {} : { CLIENT_LIMITS: JSON.stringify(limits) }),
				},
				{ scriptPath },
			);
			running.push({ name, gateway, pids: workerdPids().filter((pid) => !before.has(pid)), upstash });
		}
		const load = (name: LimitsScenarioName, gateway: RunningGateway, durationSec: number) =>
			autocannon({
				url: gateway.url,
				connections: options.connections,
				duration: durationSec,
				requests: [{ setupRequest: (base: autocannon.Request) => ({ ...base, ...request(counter++, clients, QUERIES[name]) }) }],
			});
		const measured = new Map(names.map((name) => [name, { cpu: [] as number[], rates: [] as number[], statusCounts: {} as Record<string, number>, commands: {} as Record<string, number> }]));
		type Row = (typeof running)[number];
		const begin = async ({ gateway, pids, upstash }: Row) => {
			const acceptedBefore = await accepted(gateway);
			upstash.resetStats();
			return { acceptedBefore, cpuBefore: cpuOf(pids) };
		};
		const finish = async ({ name, gateway, pids, upstash }: Row, begun: Awaited<ReturnType<typeof begin>>, result: autocannon.Result) => {
			const figures = measured.get(name)!;
			const spent = cpuOf(pids) - begun.cpuBefore;
			const ok = (await accepted(gateway)) - begun.acceptedBefore;
			figures.cpu.push(spent / 1000 / Math.max(1, ok));
			figures.rates.push(result.requests.average);
			for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) {
				figures.statusCounts[status] = (figures.statusCounts[status] ?? 0) + (stats as { count: number }).count;
			}
			if (result.errors > 0) figures.statusCounts.errors = (figures.statusCounts.errors ?? 0) + result.errors;
			figures.commands.accepted = (figures.commands.accepted ?? 0) + ok;
			for (const [command, count] of upstash.stats.commands) figures.commands[command] = (figures.commands[command] ?? 0) + count;
		};
		// Releases run after the answers, in the background: let them land before counting.
		const landed = () => new Promise((resolve) => setTimeout(resolve, 500));
		for (const { name, gateway } of running) {
			log(`warming up ${name} ...`);
			await load(name, gateway, 1);
		}
		// The warm-up's last requests land before any count is taken (loaded together, a row's round starts at once).
		await landed();
		for (let round = 1; round <= options.rounds; round++) {
			if (options.together === true) {
				log(`round ${round}/${options.rounds}: ${names.join(", ")} for ${options.durationSec} s, all at once ...`);
				const begun = await Promise.all(running.map(begin));
				const results = await Promise.all(running.map(({ name, gateway }) => load(name, gateway, options.durationSec)));
				await landed();
				for (const [i, row] of running.entries()) await finish(row, begun[i]!, results[i]!);
				continue;
			}
			for (const row of inRoundOrder(running, round)) {
				log(`round ${round}/${options.rounds}: ${row.name} for ${options.durationSec} s ...`);
				const begun = await begin(row);
				const result = await load(row.name, row.gateway, options.durationSec);
				await landed();
				await finish(row, begun, result);
			}
		}
		log("measuring the Worker's code in process ...");
		const inProcess = await measureInProcess(options.rounds, options.inProcessRequests ?? 1_500, clients);
		return names.map((name) => {
			const { cpu, rates, statusCounts, commands } = measured.get(name)!;
			const { accepted: acceptedCount = 0, ...byCommand } = commands;
			const total = Object.values(byCommand).reduce((sum, count) => sum + count, 0);
			return {
				name,
				requestsPerSec: median(rates),
				cpuMsPerRequest: median(cpu),
				cpuMsPerRound: cpu,
				upstashCommandsPerRequest: total / Math.max(1, acceptedCount),
				commands: byCommand,
				statusCounts,
				inProcessCpuMsPerRequest: inProcess.get(name)!,
			};
		});
	} finally {
		await Promise.all(running.map(({ gateway }) => gateway.close()));
		origin.kill("SIGKILL");
		await Promise.all(upstashes.map((upstash) => upstash.close()));
		await redis.stop();
	}
}

/** CPU time of a gateway's workerd processes, in microseconds. */
function cpuOf(pids: readonly number[]): number {
	return pids.reduce((sum, pid) => sum + (cpuMicros(pid) ?? 0), 0);
}

/** The requests a gateway counted as accepted (`agent_chat_requests_total{auth="ok"}`): its own count, exact. */
async function accepted(gateway: RunningGateway): Promise<number> {
	const text = await (await gateway.fetch("/metrics", { headers: { Authorization: "Bearer bench" } })).text();
	const match = /^agent_chat_requests_total\{auth="ok",mode="real"\} (\d+)/m.exec(text);
	if (match === null) throw new Error("the gateway's /metrics has no accepted count");
	return Number(match[1]);
}

/**
 * The Worker's code alone, one request at a time, with a fake Upstash client that answers at
 * once: the three configurations interleaved in blocks of 100, `rounds` times `count`
 * requests each after a warm-up of `count`, medians.
 */
async function measureInProcess(rounds: number, count: number, clients: number): Promise<Map<LimitsScenarioName, number>> {
	// workerd's own streams, where Node has none: a TransformStream passes the same bytes.
	const runtime = globalThis as { FixedLengthStream?: unknown; IdentityTransformStream?: unknown };
	runtime.FixedLengthStream ??= class extends TransformStream {
		constructor(_length: number) {
			super();
		}
	};
	runtime.IdentityTransformStream ??= class extends TransformStream {};
	// Imported by a computed specifier: the Worker's sources typecheck under the Workers config.
	const workerModule = "../../src/worker.ts";
	const { createWorker } = (await import(workerModule)) as { createWorker: (deps: object) => ExportedHandler };
	const claimed = [0, 0, 9_999, 60_000, 999_999, 999];
	// With a budget (more than four keys) the script answers the hold and what is left too.
	const reply = async (_: string, keys: string[]) => (keys.length > 4 ? [...claimed, 4096, 999_995_904, 999_995_904, 0] : claimed);
	const upstash = { set: async () => "OK", evalsha: reply, eval: reply, zrem: async () => 1 };
	const workers = new Map(
		(Object.keys(LIMITS_SCENARIOS) as LimitsScenarioName[]).map((name) => {
			const limits = LIMITS_SCENARIOS[name];
			const worker = createWorker({ log: { info() {}, warn() {}, error() {} }, fetchOrigin: async () => Response.json({ reply: "ok" }), upstash });
			const env = {
				ENVIRONMENT: "production",
				ORIGIN_URL: "https://origin.invalid",
				HMAC_SECRET: SECRET,
				METRICS_TOKEN: "bench",
				ORIGIN_TOKEN: "bench",
				UPSTASH_REDIS_REST_URL: "https://upstash.invalid",
				UPSTASH_REDIS_REST_TOKEN: "bench",
				...(limits === null ? {} : { CLIENT_LIMITS: JSON.stringify(limits) }),
			};
			return [name, { worker, env, samples: [] as number[] }];
		}),
	);
	let n = 4_000_000_000;
	// Small blocks, interleaved: a change in the machine's load falls on every configuration alike.
	const block = Math.min(100, count);
	const blocks = Math.max(1, Math.round(count / block));
	for (let round = 0; round <= rounds * blocks; round++) {
		for (const entry of workers.values()) {
			for (let i = 0; i < (round === 0 ? count : block); i++) {
				const background: Promise<unknown>[] = [];
				const ctx = { waitUntil: (promise: Promise<unknown>) => void background.push(promise), passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
				const { method, path, headers, body } = request(n++, clients);
				const started = process.cpuUsage();
				const response = await entry.worker.fetch!(new Request(`http://gateway.test${path}`, { method, headers, body }) as never, entry.env as never, ctx);
				const text = await response.text();
				await Promise.all(background);
				const used = process.cpuUsage(started);
				if (response.status !== 200) throw new Error(`in process: got ${response.status}, not 200: ${text}`);
				// Round 0 (a whole `count`) warms the JIT and each isolate's caches.
				if (round > 0) entry.samples.push((used.user + used.system) / 1000);
			}
		}
	}
	return new Map([...workers].map(([name, { samples }]) => [name, median(samples)]));
}

export function formatLimitsReport(results: readonly LimitsScenarioResult[], together = false): string {
	const base = results.find((result) => result.name === "no-limits");
	const ratio = (value: number, of: number | undefined) => (of === undefined ? "-" : (value / of).toFixed(3));
	const lines = [
		together
			? "Loaded together (--together): each round loaded every row at once, each on its own workerd and Upstash server, so paired rows shared the machine's every moment."
			: "Each round loaded one row after another, the order turning each round.",
		"",
		"| scenario | req/s | workerd CPU ms/accepted | x no-limits | Worker code CPU ms/request (in process) | x no-limits | Upstash commands/accepted | commands | statuses |",
		"|---|---:|---:|---:|---:|---:|---:|---|---|",
		...results.map((r) =>
			[
				r.name,
				r.requestsPerSec.toFixed(0),
				r.cpuMsPerRequest.toFixed(3),
				ratio(r.cpuMsPerRequest, base?.cpuMsPerRequest),
				r.inProcessCpuMsPerRequest.toFixed(3),
				ratio(r.inProcessCpuMsPerRequest, base?.inProcessCpuMsPerRequest),
				r.upstashCommandsPerRequest.toFixed(3),
				Object.entries(r.commands).map(([k, v]) => `${k}: ${v}`).join(", "),
				Object.entries(r.statusCounts).map(([k, v]) => `${k}: ${v}`).join(", "),
			].join(" | ").replace(/^/, "| ").concat(" |"),
		),
		"",
		"Goal: CPU per accepted request with limits at most 1.05x without; 1.000 Upstash command per accepted request without `concurrent` (2.000 with it: the release); with a budget, 1 on the way in and at most 1 to settle (the demo origin reports each chat answer's tokens by header: each settle is handed over to ride on the client's next claim, or is sent alone by the isolate's sweeper when none comes within a second), and CPU within 1.05x of rpm+rpd.",
	];
	const limited = results.find((result) => result.name === "rpm+rpd");
	for (const [name, what] of [["rpm+rpd+budget-unreported", "the reservation alone"], ["rpm+rpd+budget", "with each answer reported and settled"]] as const) {
		const budget = results.find((result) => result.name === name);
		if (limited === undefined || budget === undefined) continue;
		const rounds = roundRatios(budget.cpuMsPerRound, limited.cpuMsPerRound);
		const paired = rounds.length === 0 ? "-" : median(rounds).toFixed(3);
		lines.push(
			`Budget against rpm+rpd, ${what} (${name}): workerd CPU ${paired}x (the median of the rounds' ratios: ${rounds.map((r) => r.toFixed(3)).join(", ")}; the ratio of the medians ${ratio(budget.cpuMsPerRequest, limited.cpuMsPerRequest)}x), the Worker's code in process ${ratio(budget.inProcessCpuMsPerRequest, limited.inProcessCpuMsPerRequest)}x (its fake origin reports nothing); Upstash commands per accepted request ${budget.upstashCommandsPerRequest.toFixed(3)} against ${limited.upstashCommandsPerRequest.toFixed(3)}.`,
		);
	}
	return `${lines.join("\n")}\n`;
}
