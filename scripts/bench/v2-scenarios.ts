// Scheme v2 against v1 (issue 14), CPU of workerd per request:
//   node scripts/bench/v2-scenarios.ts [--duration 5] [--rounds 3] [--connections 16]
//   (or `npm run bench -- --v2`, which runs this after the main benchmark)
// - a bad-signature flood with 256 KiB bodies: v1 must read and hash each body before it can
//   refuse it; v2 refuses it from its headers.
// - accepted requests with 1 KiB bodies (memory replay store): what v2's parsing costs.
// Each scenario runs its own gateway (the shipped bundle in workerd through Miniflare), one at
// a time, and reads workerd's CPU time (user + system, /proc) around the load.
import { spawn, spawnSync } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { serializeDictionary, serializeInnerList, type InnerList } from "structured-headers";
import { bundleWorker } from "../lib/build.ts";
import { startGateway } from "../lib/gateway-runner.ts";
import { freePort, waitForPort } from "../lib/processes.ts";

export const V2_SCENARIOS = ["v1-bad-256k", "v2-bad-256k", "v1-ok-1k", "v2-ok-1k"] as const;
export type V2ScenarioName = (typeof V2_SCENARIOS)[number];

export interface V2BenchOptions {
	durationSec: number;
	rounds: number;
	connections: number;
	log: (line: string) => void;
}

export interface V2ScenarioResult {
	name: V2ScenarioName;
	requests: number;
	requestsPerSec: number;
	/** workerd's CPU time (user + system) per answered request, in milliseconds: median of the rounds. */
	cpuMsPerRequest: number;
	statusCounts: Record<string, number>;
	/**
	 * The Worker's own code only, in this Node process (the same V8; WebCrypto on OpenSSL, not
	 * BoringSSL): CPU per request from the request to its answer's last byte, one at a time,
	 * without the HTTP stack, which workerd's figure above includes (receiving a 256 KiB body
	 * costs the process CPU whether or not the Worker reads it).
	 */
	inProcessCpuMsPerRequest: number;
}

const SECRET = "bench-v2-secret-0123456789abcdef";
const CLIENT_ID = "bench";
const CLOCK_TICKS_PER_SEC = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function body(size: number, counter: number): string {
	const prefix = `{"messages":[{"role":"user","content":"${counter} `;
	const suffix = '"}]}';
	return prefix + "x".repeat(Math.max(0, size - prefix.length - suffix.length)) + suffix;
}

function v1Headers(payload: string, secret: string): Record<string, string> {
	const timestamp = String(Date.now());
	const bodyHash = createHash("sha256").update(payload).digest("hex");
	const signature = createHmac("sha256", secret).update(`POST\n/agent/chat\n${timestamp}\n${bodyHash}`).digest("hex");
	return { "x-client-id": CLIENT_ID, "x-timestamp": timestamp, "x-signature": signature, "content-type": "application/json" };
}

/** A v2 POST to /agent/chat signed with Node's crypto (the load generator must sign synchronously). */
function v2Headers(payload: string, secret: string): Record<string, string> {
	const digest = serializeDictionary({ "sha-256": new Uint8Array(createHash("sha256").update(payload).digest()) });
	const components = ["@method", "@path", "@query", "content-digest"];
	const member: InnerList = [
		components.map((name) => [name, new Map()]),
		new Map<string, string | number>([
			["created", Math.floor(Date.now() / 1000)],
			["keyid", CLIENT_ID],
			["nonce", randomBytes(16).toString("base64url")],
		]),
	];
	const params = serializeInnerList(member);
	const base = `"@method": POST\n"@path": /agent/chat\n"@query": ?\n"content-digest": ${digest}\n"@signature-params": ${params}`;
	const signature = new Uint8Array(createHmac("sha256", secret).update(base).digest());
	return {
		"content-digest": digest,
		"signature-input": serializeDictionary(new Map([["sig1", member]])),
		signature: serializeDictionary({ sig1: signature }),
		"content-type": "application/json",
	};
}

function requestFor(name: V2ScenarioName, counter: number): { headers: Record<string, string>; body: string } {
	const bad = name.includes("bad");
	const payload = body(bad ? 256 * 1024 : 1024, counter);
	const secret = bad ? "not-the-secret" : SECRET;
	return { headers: name.startsWith("v2") ? v2Headers(payload, secret) : v1Headers(payload, secret), body: payload };
}

/** workerd processes started by this process, and their CPU time in clock ticks. */
function workerdPids(): string[] {
	return spawnSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
}

function cpuTicks(pids: readonly string[]): number {
	let ticks = 0;
	for (const pid of pids) {
		try {
			// Fields after the command (which may hold spaces): utime is the 14th field, stime the 15th.
			const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
			ticks += Number(fields[11]) + Number(fields[12]);
		} catch {
			// The process ended: its time is lost to this figure.
		}
	}
	return ticks;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Runs the four scenarios, each against a fresh gateway of its own; returns CPU per request. */
export async function runV2Scenarios(options: V2BenchOptions): Promise<V2ScenarioResult[]> {
	const { log } = options;
	if (process.platform !== "linux") throw new Error("the v2 scenarios read workerd's CPU time from /proc (Linux only)");
	log("bundling the gateway ...");
	const scriptPath = bundleWorker(".build/bench/gateway");
	const originPort = await freePort();
	const origin = spawn(process.execPath, ["scripts/demo-origin.ts", "--port", String(originPort)], { stdio: "ignore" });
	const results: V2ScenarioResult[] = [];
	try {
		await waitForPort(originPort);
		for (const name of V2_SCENARIOS) {
			const before = new Set(workerdPids());
			const gateway = await startGateway(
				{ ENVIRONMENT: "production", ORIGIN_URL: `http://127.0.0.1:${originPort}`, HMAC_SECRET: SECRET, METRICS_TOKEN: "bench", ORIGIN_TOKEN: "bench" },
				{ scriptPath },
			);
			const pids = workerdPids().filter((pid) => !before.has(pid));
			try {
				let counter = 0;
				const run = (durationSec: number) =>
					autocannon({
						url: gateway.url,
						connections: options.connections,
						duration: durationSec,
						requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, method: "POST", path: "/agent/chat", ...requestFor(name, counter++) }) }],
					});
				log(`warming up ${name} ...`);
				await run(1);
				const cpu: number[] = [];
				const rates: number[] = [];
				const statusCounts: Record<string, number> = {};
				let requests = 0;
				for (let round = 1; round <= options.rounds; round++) {
					log(`round ${round}/${options.rounds}: ${name} for ${options.durationSec} s ...`);
					const ticks = cpuTicks(pids);
					const result = await run(options.durationSec);
					await new Promise((resolve) => setTimeout(resolve, 300));
					const answered = result.requests.total;
					cpu.push((((cpuTicks(pids) - ticks) / CLOCK_TICKS_PER_SEC) * 1000) / Math.max(1, answered));
					rates.push(result.requests.average);
					requests += answered;
					for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) {
						statusCounts[status] = (statusCounts[status] ?? 0) + (stats as { count: number }).count;
					}
					if (result.errors > 0) statusCounts.errors = (statusCounts.errors ?? 0) + result.errors;
				}
				log(`measuring ${name} in process ...`);
				const inProcessCpuMsPerRequest = await measureInProcess(name, 1000);
				results.push({ name, requests, requestsPerSec: median(rates), cpuMsPerRequest: median(cpu), statusCounts, inProcessCpuMsPerRequest });
			} finally {
				await gateway.close();
			}
		}
	} finally {
		origin.kill("SIGKILL");
	}
	return results;
}

/** CPU per request of the Worker's code alone (see `inProcessCpuMsPerRequest`), median of `count` sequential requests. */
async function measureInProcess(name: V2ScenarioName, count: number): Promise<number> {
	// Imported by a computed specifier: the Worker's sources typecheck under the Workers
	// config, not under this script's Node config (their SubtleCrypto differs).
	const workerModule = "../../src/worker.ts";
	const { createWorker } = (await import(workerModule)) as { createWorker: (deps: object) => ExportedHandler };
	const worker = createWorker({ log: { info() {}, warn() {}, error() {} }, fetchOrigin: async () => Response.json({ reply: "ok" }) });
	const env = { ENVIRONMENT: "production", ORIGIN_URL: "http://origin.invalid", HMAC_SECRET: SECRET, METRICS_TOKEN: "bench", ORIGIN_TOKEN: "bench" };
	const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
	const expected = name.includes("bad") ? 403 : 200;
	const samples: number[] = [];
	for (let i = 0; i < count + 100; i++) {
		const { headers, body: payload } = requestFor(name, 3_000_000_000 + i);
		const request = new Request("http://gateway.test/agent/chat", { method: "POST", headers, body: payload });
		const started = process.cpuUsage();
		const response = await worker.fetch!(request as never, env as never, ctx);
		await response.arrayBuffer();
		const used = process.cpuUsage(started);
		if (response.status !== expected) throw new Error(`${name}: in process, got ${response.status}, not ${expected}`);
		// The first 100 warm the isolate's caches (the imported keys) and the JIT.
		if (i >= 100) samples.push((used.user + used.system) / 1000);
	}
	return median(samples);
}

export function formatV2Report(results: readonly V2ScenarioResult[]): string {
	const find = (name: V2ScenarioName) => results.find((r) => r.name === name);
	const lines = [
		"| scenario | req/s | workerd CPU ms/request | Worker code CPU ms/request (in process) | statuses |",
		"|---|---:|---:|---:|---|",
		...results.map(
			(r) =>
				`| ${r.name} | ${r.requestsPerSec.toFixed(0)} | ${r.cpuMsPerRequest.toFixed(3)} | ${r.inProcessCpuMsPerRequest.toFixed(3)} | ${Object.entries(r.statusCounts).map(([k, v]) => `${k}: ${v}`).join(", ")} |`,
		),
		"",
	];
	const ratio = (key: "cpuMsPerRequest" | "inProcessCpuMsPerRequest", a?: V2ScenarioResult, b?: V2ScenarioResult) =>
		a && b ? (a[key] / b[key]).toFixed(2) : "-";
	const both = (a: V2ScenarioName, b: V2ScenarioName) =>
		`${ratio("cpuMsPerRequest", find(a), find(b))} of v1's workerd CPU, ${ratio("inProcessCpuMsPerRequest", find(a), find(b))} of its Worker-code CPU`;
	lines.push(`Bad-signature flood, 256 KiB bodies: v2 costs ${both("v2-bad-256k", "v1-bad-256k")} per rejected request.`);
	lines.push(`Accepted requests, 1 KiB bodies: v2 costs ${both("v2-ok-1k", "v1-ok-1k")} per request.`);
	return `${lines.join("\n")}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
	const { values } = parseArgs({
		options: {
			duration: { type: "string", default: "5" },
			rounds: { type: "string", default: "3" },
			connections: { type: "string", default: "16" },
		},
	});
	const results = await runV2Scenarios({
		durationSec: Number(values.duration),
		rounds: Number(values.rounds),
		connections: Number(values.connections),
		log: (line) => console.error(line),
	});
	mkdirSync(".build/bench", { recursive: true });
	writeFileSync(".build/bench/v2-results.json", `${JSON.stringify(results, null, 2)}\n`);
	const table = formatV2Report(results);
	writeFileSync(".build/bench/v2-report.md", table);
	console.log(table);
}
