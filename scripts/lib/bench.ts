import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpus } from "node:os";
import { createHash, createHmac } from "node:crypto";
import autocannon from "autocannon";
import { GatewayMetrics } from "../../src/metrics/gateway-metrics.ts";
import { INGEST_VERSION, type IngestPayload } from "../../src/metrics/ingest.ts";
import { MemoryReplayStore } from "../../src/replay/memory.ts";
import { bundleWorker } from "./build.ts";
import { startGateway, type RunningGateway } from "./gateway-runner.ts";
import { freePort, startRedisServer, waitForPort, type RedisProcess } from "./processes.ts";
import { startUpstashServer, type UpstashServer } from "./upstash-server.ts";

export type ScenarioName =
	| "bare-1k"
	| "memory-1k"
	| "memory-no-metrics-1k"
	| "upstash-1k"
	| "rejected-flood"
	| "bare-256k"
	| "memory-256k";

export const ALL_SCENARIOS: readonly ScenarioName[] = [
	"bare-1k",
	"memory-1k",
	"memory-no-metrics-1k",
	"upstash-1k",
	"rejected-flood",
	"bare-256k",
	"memory-256k",
];

export interface BenchOptions {
	durationSec: number;
	/** Rounds over all scenarios; each figure is the median of its rounds. */
	rounds: number;
	connections: number;
	scenarios: readonly ScenarioName[];
	/** Also measure the memory store with a million distinct keys. */
	memoryStore: boolean;
	/** Give workerd a CPU of its own (the process running the benchmark is pinned too). */
	pinCpus: boolean;
	/** Sequential scrapes for the `/metrics` latency figure (0: skip). */
	scrapes: number;
	log: (line: string) => void;
}

export interface ScenarioResult {
	name: ScenarioName;
	requests: number;
	/** Median over the rounds of autocannon's average requests per second. */
	requestsPerSec: number;
	/** One request at a time, after the load: what the gateway adds, without queueing. */
	latencyP50Ms: number;
	latencyP99Ms: number;
	/** Median over the rounds of autocannon's p99 under load. */
	loadedP99Ms: number;
	statusCounts: Record<string, number>;
	/**
	 * Upstash HTTP calls (counted by the Upstash server) per request the gateway counted as
	 * accepted, or for the flood as rejected (Upstash scenarios only).
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
	connections: number;
	metricsFlushMs: number;
	scenarios: ScenarioResult[];
	/** p50 and p99 of one SET through the local Upstash server, measured alone. */
	upstashRoundTrip: { p50Ms: number; p99Ms: number } | null;
	metricsScrape: { p50Ms: number; p99Ms: number } | null;
	/** Ingests of a full-size batch one aggregator object applied per second, called from Node through Miniflare. */
	ingestCapacity: { perSec: number; concurrency: number } | null;
	/** A valid client's latency, one request at a time: alone, and during a bad-signature flood at a fixed rate. */
	neighbour: { floodRate: number; floodRequests: number; aloneP50Ms: number; duringP50Ms: number; aloneP99Ms: number; duringP99Ms: number } | null;
	memoryStore: { keys: number; bound: number; heapBytesPerKey: number; storedKeys: number; refused: number }[] | null;
}

const SECRET = "bench-secret-of-at-least-32-characters";
const METRICS_TOKEN = "bench-metrics-token";
const METRICS_FLUSH_MS = 1000;
const UPSTASH_TOKEN = "bench-upstash-token";

/** Runs the benchmark: every scenario against a fresh gateway in workerd, one load generator. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
	const { log } = options;
	log("bundling the gateway, the bare proxy and the gateway without metrics ...");
	const wanted = new Set(options.scenarios);
	const bundles = {
		gateway: bundleWorker(".build/bench/gateway"),
		bare: [...wanted].some((name) => name.startsWith("bare")) ? bundleWorker(".build/bench/bare", "scripts/bench/bare-entry.ts") : "",
		noMetrics: wanted.has("memory-no-metrics-1k") ? bundleWorker(".build/bench/no-metrics", "scripts/bench/no-metrics-entry.ts") : "",
	};

	const originPort = await freePort();
	const origin = spawnOrigin(originPort);
	let redis: RedisProcess | null = null;
	let upstash: UpstashServer | null = null;
	const results: ScenarioResult[] = [];
	let pinnedCpus = false;
	let upstashRoundTrip: BenchReport["upstashRoundTrip"] = null;
	let metricsScrape: BenchReport["metricsScrape"] = null;
	let ingestCapacity: BenchReport["ingestCapacity"] = null;
	let neighbour: BenchReport["neighbour"] = null;
	try {
		await waitForPort(originPort);
		const originUrl = `http://127.0.0.1:${originPort}`;
		if (options.scenarios.some((name) => name === "upstash-1k" || name === "rejected-flood")) {
			redis = await startRedisServer();
			upstash = await startUpstashServer({ redisPort: redis.port, token: UPSTASH_TOKEN });
			upstashRoundTrip = await measureUpstashRoundTrip(upstash);
		}
		const baseBindings = { ENVIRONMENT: "production", ORIGIN_URL: originUrl, HMAC_SECRET: SECRET, METRICS_TOKEN, METRICS_FLUSH_MS: String(METRICS_FLUSH_MS), ORIGIN_TOKEN: "bench" };
		const upstashBindings: Record<string, string> = upstash === null ? {} : { UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: UPSTASH_TOKEN, REPLAY_TIMEOUT_MS: "1000" };

		// Every scenario's gateway runs for the whole benchmark; rounds alternate between
		// them, so a noisy moment of the machine spreads over all of them alike.
		const running = new Map<ScenarioName, RunningGateway>();
		for (const name of new Set(options.scenarios)) {
			const withUpstash = name === "upstash-1k" || name === "rejected-flood";
			const scriptPath = name.startsWith("bare") ? bundles.bare : name === "memory-no-metrics-1k" ? bundles.noMetrics : bundles.gateway;
			running.set(name, await startGateway({ ...baseBindings, ...(withUpstash ? upstashBindings : {}) }, { scriptPath }));
		}
		const pinned = options.pinCpus && pinProcesses(origin.pid);
		pinnedCpus = pinned;
		if (pinned) log("pinned workerd to CPU 1, the load generator and the origin to CPU 0");
		try {
			/** `decided`: requests the gateway itself counted as accepted (or, for the flood, rejected). */
			const totals = new Map<
				ScenarioName,
				{ rounds: autocannon.Result[]; upstashCalls: number; decided: number; ingests: number; ingestBound: number; seconds: number }
			>();
			for (const [name, gateway] of running) {
				log(`warming up ${name} ...`);
				await load(gateway.url, name, { ...options, durationSec: 1 });
				totals.set(name, { rounds: [], upstashCalls: 0, decided: 0, ingests: 0, ingestBound: 0, seconds: 0 });
			}
			const order = [...running];
			for (let round = 1; round <= options.rounds; round++) {
				// Each round starts with another scenario, so no scenario always follows the same one.
				const rotated = [...order.slice((round - 1) % order.length), ...order.slice(0, (round - 1) % order.length)];
				for (const [name, gateway] of rotated) {
					log(`round ${round}/${options.rounds}: ${name} for ${options.durationSec} s with ${options.connections} connections ...`);
					const measured = totals.get(name)!;
					const bare = name.startsWith("bare");
					upstash?.resetStats();
					const before = bare ? null : await readCounters(gateway);
					const started = performance.now();
					measured.rounds.push(await load(gateway.url, name, options));
					measured.seconds += (performance.now() - started) / 1000;
					if (before !== null) {
						// Requests still in flight when the load stopped finish before the counts are read.
						await new Promise((resolve) => setTimeout(resolve, 300));
						const after = await readCounters(gateway);
						// The scrape before the load counts one flush of its own.
						measured.ingests += Math.max(0, after.flushes - before.flushes - 1);
						measured.ingestBound += 1 + Math.floor((options.durationSec * 1000) / METRICS_FLUSH_MS);
						measured.decided += name === "rejected-flood" ? after.rejected - before.rejected : after.accepted - before.accepted;
					}
					measured.upstashCalls += upstash?.stats.commands.get("set") ?? 0;
				}
			}
			for (const [name, gateway] of running) {
				const measured = totals.get(name)!;
				const withUpstash = name === "upstash-1k" || name === "rejected-flood";
				const requests = measured.rounds.reduce((sum, result) => sum + result.requests.total, 0);
				log(`measuring the latency of ${name}, one request at a time ...`);
				const latency = await sequentialLatency(gateway.url, name, 300);
				results.push({
					name,
					requests,
					requestsPerSec: median(measured.rounds.map((result) => result.requests.average)),
					latencyP50Ms: latency.p50Ms,
					latencyP99Ms: latency.p99Ms,
					loadedP99Ms: median(measured.rounds.map((result) => result.latency.p99)),
					statusCounts: mergeCounts(measured.rounds.map(statusCounts)),
					upstashCallsPerRequest: withUpstash && measured.decided > 0 ? measured.upstashCalls / measured.decided : null,
					upstashCalls: withUpstash ? { calls: measured.upstashCalls, requests: measured.decided } : null,
					ingestPerSec: name.startsWith("bare") ? null : measured.ingests / measured.seconds,
					ingests: name.startsWith("bare") ? null : { count: measured.ingests, bound: measured.ingestBound },
				});
				if (name === "memory-1k" && options.scrapes > 0) {
					metricsScrape = await measureScrapes(gateway, options.scrapes);
					log("measuring what one metrics Durable Object takes ...");
					ingestCapacity = await measureIngestCapacity(gateway);
					log("measuring a valid client's latency during a flood of bad signatures ...");
					neighbour = await measureNeighbour(gateway, options);
				}
			}
		} finally {
			await Promise.all([...running.values()].map((gateway) => gateway.close()));
		}
	} finally {
		origin.kill("SIGKILL");
		await upstash?.close();
		await redis?.stop();
	}

	return {
		machine: { cpus: cpus().length, node: process.version, date: new Date().toISOString(), pinned: pinnedCpus },
		durationSec: options.durationSec,
		rounds: options.rounds,
		connections: options.connections,
		metricsFlushMs: METRICS_FLUSH_MS,
		scenarios: results,
		upstashRoundTrip,
		metricsScrape,
		ingestCapacity,
		neighbour,
		memoryStore: options.memoryStore ? await measureMemoryStore() : null,
	};
}

/**
 * On a machine with two or more CPUs, gives workerd a CPU of its own and puts the load
 * generator and the origin on another, so they do not take turns with the gateway.
 */
function pinProcesses(originPid: number | undefined): boolean {
	if (cpus().length < 2 || spawnSync("sh", ["-c", "command -v taskset && command -v pgrep"], { stdio: "ignore" }).status !== 0) return false;
	const workerd = spawnSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
	if (workerd.length === 0) return false;
	for (const pid of workerd) spawnSync("taskset", ["-a", "-p", "-c", "1", pid], { stdio: "ignore" });
	for (const pid of [process.pid, originPid]) if (pid !== undefined) spawnSync("taskset", ["-a", "-p", "-c", "0", String(pid)], { stdio: "ignore" });
	return true;
}

function spawnOrigin(port: number): ChildProcess {
	// Its own process, so the origin does not share the load generator's thread.
	return spawn(process.execPath, ["scripts/demo-origin.ts", "--port", String(port)], { stdio: "ignore" });
}

function body(size: number, counter: number): string {
	const prefix = `{"messages":[{"role":"user","content":"${counter} `;
	const suffix = '"}]}';
	return prefix + "x".repeat(Math.max(0, size - prefix.length - suffix.length)) + suffix;
}

function signHeaders(method: string, path: string, payload: string, timestamp: number, secret = SECRET): Record<string, string> {
	const bodyHash = createHash("sha256").update(payload).digest("hex");
	const signature = createHmac("sha256", secret).update(`${method}\n${path}\n${timestamp}\n${bodyHash}`).digest("hex");
	return { "x-client-id": "bench", "x-timestamp": String(timestamp), "x-signature": signature, "content-type": "application/json" };
}

async function load(url: string, name: ScenarioName, options: BenchOptions): Promise<autocannon.Result> {
	const size = name.endsWith("256k") ? 256 * 1024 : 1024;
	let counter = 0;
	const setupRequest = (request: autocannon.Request): autocannon.Request => {
		counter++;
		const payload = body(size, counter);
		if (name === "rejected-flood") {
			const kind = counter % 3;
			const headers =
				kind === 0 ? { "content-type": "application/json" }
				: kind === 1 ? signHeaders("POST", "/agent/chat", payload, Date.now(), "not-the-secret")
				: signHeaders("POST", "/agent/chat", payload, Date.now() - 3_600_000);
			return { ...request, method: "POST", path: "/agent/chat", headers, body: payload };
		}
		const headers = name.startsWith("bare") ? { "content-type": "application/json" } : signHeaders("POST", "/agent/chat", payload, Date.now());
		return { ...request, method: "POST", path: "/agent/chat", headers, body: payload };
	};
	return autocannon({ url, connections: options.connections, duration: options.durationSec, requests: [{ setupRequest }] });
}

function statusCounts(result: autocannon.Result): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) counts[status] = (stats as { count: number }).count;
	if (result.errors > 0) counts.errors = result.errors;
	if (result.timeouts > 0) counts.timeouts = result.timeouts;
	return counts;
}

/** One request at a time: latency without queueing, to the tenth of a millisecond. */
async function sequentialLatency(url: string, name: ScenarioName, count: number): Promise<{ p50Ms: number; p99Ms: number }> {
	const size = name.endsWith("256k") ? 256 * 1024 : 1024;
	const times: number[] = [];
	for (let i = 0; i < count; i++) {
		const payload = body(size, 1_000_000_000 + i);
		const headers =
			name.startsWith("bare") ? { "content-type": "application/json" }
			: name === "rejected-flood" ? signHeaders("POST", "/agent/chat", payload, Date.now(), "not-the-secret")
			: signHeaders("POST", "/agent/chat", payload, Date.now());
		const started = performance.now();
		const response = await fetch(`${url}/agent/chat`, { method: "POST", headers, body: payload });
		await response.arrayBuffer();
		times.push(performance.now() - started);
		const expected = name === "rejected-flood" ? 403 : 200;
		if (response.status !== expected) throw new Error(`${name}: a latency probe got ${response.status}, not ${expected}`);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

function median(values: number[]): number {
	return percentile(values, 0.5);
}

function mergeCounts(all: Record<string, number>[]): Record<string, number> {
	const merged: Record<string, number> = {};
	for (const counts of all) for (const [key, value] of Object.entries(counts)) merged[key] = (merged[key] ?? 0) + value;
	return merged;
}

/** The gateway's own counts, from its /metrics: flushes that succeeded, requests accepted and rejected. */
async function readCounters(gateway: RunningGateway): Promise<{ flushes: number; accepted: number; rejected: number }> {
	const text = await (await fetch(`${gateway.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).text();
	const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
	return {
		flushes: sum(/^agent_metrics_flushes_total\{outcome="ok"\} (\S+)$/gm),
		accepted: sum(/^agent_chat_requests_total\{auth="ok",mode="real"\} (\S+)$/gm),
		rejected: sum(/^agent_chat_requests_total\{auth="fail",mode="[a-z_]+"\} (\S+)$/gm),
	};
}

async function measureScrapes(gateway: RunningGateway, count: number): Promise<{ p50Ms: number; p99Ms: number }> {
	const times: number[] = [];
	for (let i = 0; i < count; i++) {
		const started = performance.now();
		const response = await fetch(`${gateway.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
		await response.text();
		times.push(performance.now() - started);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

async function measureNeighbour(gateway: RunningGateway, options: BenchOptions): Promise<NonNullable<BenchReport["neighbour"]>> {
	const floodRate = 500;
	const alone = await sequentialLatency(gateway.url, "memory-1k", 300);
	let payloadCounter = 0;
	const flood = autocannon({
		url: gateway.url,
		connections: 8,
		overallRate: floodRate,
		duration: Math.max(3, options.durationSec),
		requests: [
			{
				setupRequest: (request: autocannon.Request) => {
					const payload = body(1024, 2_000_000_000 + payloadCounter++);
					return { ...request, method: "POST", path: "/agent/chat", headers: signHeaders("POST", "/agent/chat", payload, Date.now(), "flood-guess"), body: payload };
				},
			},
		],
	});
	await new Promise((resolve) => setTimeout(resolve, 500));
	const during = await sequentialLatency(gateway.url, "memory-1k", 300);
	const result = await flood;
	return { floodRate, floodRequests: result.requests.total, aloneP50Ms: alone.p50Ms, duringP50Ms: during.p50Ms, aloneP99Ms: alone.p99Ms, duringP99Ms: during.p99Ms };
}

/**
 * Many isolates' ingests at once into one aggregator object, each batch as large as an
 * isolate ever sends (every series of the gateway). Called from Node through Miniflare, so
 * the figure includes that hop and is a lower bound of what the object itself takes.
 */
async function measureIngestCapacity(gateway: RunningGateway): Promise<{ perSec: number; concurrency: number }> {
	const namespace = await gateway.mf.getDurableObjectNamespace("METRICS_AGGREGATOR", "gateway-0");
	const stub = namespace.get(namespace.idFromName("bench-capacity")) as unknown as { ingest(payload: IngestPayload): Promise<unknown> };
	const samples = new GatewayMetrics().primed;
	const concurrency = 16;
	const deadline = performance.now() + 3000;
	let count = 0;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async (_, worker) => {
			for (let seq = 1; performance.now() < deadline; seq++) {
				await stub.ingest({ v: INGEST_VERSION, isolate: `bench-${worker}`, batches: [{ seq, samples, gauges: { agent_replay_store_degraded: 0 } }] });
				count++;
			}
		}),
	);
	return { perSec: count / ((performance.now() - started) / 1000), concurrency };
}

async function measureUpstashRoundTrip(upstash: UpstashServer): Promise<{ p50Ms: number; p99Ms: number }> {
	const times: number[] = [];
	for (let i = 0; i < 300; i++) {
		const started = performance.now();
		const response = await fetch(upstash.url, {
			method: "POST",
			headers: { Authorization: `Bearer ${UPSTASH_TOKEN}`, "Upstash-Encoding": "base64" },
			body: JSON.stringify(["SET", `bench:rtt:${i}`, "1", "NX", "PX", "60000"]),
		});
		await response.text();
		times.push(performance.now() - started);
	}
	return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99) };
}

/** Heap per key of the memory store (V8, as in workerd), and that the default bound holds under a flood. */
async function measureMemoryStore(): Promise<NonNullable<BenchReport["memoryStore"]>> {
	const keys = 1_000_000;
	const results: NonNullable<BenchReport["memoryStore"]> = [];
	for (const bound of [100_000, keys]) {
		const gc = (globalThis as { gc?: () => void }).gc;
		gc?.();
		const before = process.memoryUsage().heapUsed;
		const store = new MemoryReplayStore(bound, () => 0);
		let refused = 0;
		for (let i = 0; i < keys; i++) {
			// A replay key is the 64-hex signature after the prefix.
			const key = `hmac:replay:${createHash("sha256").update(String(i)).digest("hex")}`;
			store.claim(key, "", 600_000).catch(() => refused++);
		}
		// Let the claims' promises settle, so only the store is left on the heap.
		await new Promise((resolve) => setImmediate(resolve));
		gc?.();
		const after = process.memoryUsage().heapUsed;
		results.push({ keys, bound, storedKeys: store.size, refused, heapBytesPerKey: Math.round((after - before) / Math.max(1, store.size)) });
	}
	return results;
}

function percentile(values: number[], q: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** The report as a Markdown table, with ratios to the bare proxy of the same body size. */
export function formatReport(report: BenchReport): string {
	const bareFor = (name: ScenarioName) => report.scenarios.find((s) => s.name === (name.endsWith("256k") ? "bare-256k" : "bare-1k"));
	const lines = [
		`Run ${report.machine.date}, ${report.machine.cpus} CPUs, Node ${report.machine.node}; ${report.rounds} rounds of ${report.durationSec} s per scenario, ${report.connections} connections; METRICS_FLUSH_MS=${report.metricsFlushMs}.`,
		"req/s: median of the rounds. p50/p99: one request at a time after the load. Loaded p99: median of the rounds.",
		"",
		report.machine.pinned ? "workerd ran on a CPU of its own; the load generator and the demo origin shared the other." : "Load generator, origin and workerd shared the CPUs.",
		"",
		"| scenario | req/s | ratio to bare | p50 ms | p99 ms | added p50 ms | loaded p99 ms | statuses | Upstash calls/req | ingest RPCs (at most) | ingest RPC/s |",
		"|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
	];
	for (const s of report.scenarios) {
		const bare = bareFor(s.name);
		const ratio = bare && bare !== s ? (s.requestsPerSec / bare.requestsPerSec).toFixed(2) : "1.00";
		const added = bare && bare !== s ? (s.latencyP50Ms - bare.latencyP50Ms).toFixed(2) : "0";
		const statuses = Object.entries(s.statusCounts).map(([k, v]) => `${k}: ${v}`).join(", ");
		lines.push(
			`| ${s.name} | ${s.requestsPerSec.toFixed(0)} | ${ratio} | ${s.latencyP50Ms.toFixed(2)} | ${s.latencyP99Ms.toFixed(2)} | ${added} | ${s.loadedP99Ms} | ${statuses} | ${s.upstashCallsPerRequest?.toFixed(3) ?? "-"} | ${s.ingests ? `${s.ingests.count} (${s.ingests.bound})` : "-"} | ${s.ingestPerSec?.toFixed(2) ?? "-"} |`,
		);
	}
	const memory = report.scenarios.find((s) => s.name === "memory-1k");
	const noMetrics = report.scenarios.find((s) => s.name === "memory-no-metrics-1k");
	lines.push("");
	if (memory && noMetrics) {
		lines.push(`Metrics on the request path: ${(100 * (1 - memory.requestsPerSec / noMetrics.requestsPerSec)).toFixed(1)}% of throughput (memory-1k against memory-no-metrics-1k).`);
	}
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
	return `${lines.join("\n")}\n`;
}
