// The keyring in KV against HMAC_CLIENTS (issue 22): CPU of the Worker's code per accepted
// request, cache warm, in this Node process (the same V8 as workerd; WebCrypto on OpenSSL).
//   node scripts/bench/keyring.ts [--requests 3000] [--rounds 5]
//   (or `npm run bench -- --only keyring`)
// - hmac-clients: 30 clients in HMAC_CLIENTS (about what a 5 KiB Worker secret holds), round robin;
// - keyring-1: one client in the keyring;
// - keyring-10k: 10,000 clients in the keyring, round robin (every record cached once first).
// The keyring is a Map behind KV's `get` (a warm cache never reads it; the figure says how
// many reads the measured requests made). The scenarios take turns request by request, so a
// machine's drift hits all of them alike; each figure is the median per request over all rounds.
import { createHash, createHmac } from "node:crypto";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { RECORD_VERSION, recordKey } from "../../src/keyring/record.ts";
import { generateKeyringKey, importKeyringKey, decodeKeyringKey, sealRecord } from "../../src/keyring/sealing.ts";

export const KEYRING_SCENARIOS = ["hmac-clients", "keyring-1", "keyring-10k"] as const;
export type KeyringScenarioName = (typeof KEYRING_SCENARIOS)[number];

export interface KeyringBenchOptions {
	/** Measured requests per scenario and round. */
	requests: number;
	rounds: number;
	/** Clients of the many-clients scenario. @default 10000 */
	manyClients?: number;
	log: (line: string) => void;
}

export interface KeyringScenarioResult {
	name: KeyringScenarioName;
	clients: number;
	/** Median CPU (user + system) of one accepted request, from the request to its answer's last byte, in microseconds. */
	cpuUsPerRequest: number;
	/** KV reads made by the measured requests (0 with a warm cache). */
	kvReads: number;
}

type Worker = { fetch: (request: Request, env: unknown, ctx: ExecutionContext) => Promise<Response> };

const BODY = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(960) }] });
const BODY_SHA256 = createHash("sha256").update(BODY).digest("hex");
const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

function secretOf(i: number): string {
	return createHash("sha256").update(`bench-client-${i}`).digest("base64url");
}

/** Timestamps from here on, one millisecond apart per request: every signature differs (no replay), all within the skew window. */
const FIRST_TIMESTAMP = Date.now() - 200_000;

function signedRequest(clientId: string, secret: string, counter: number): Request {
	const timestamp = String(FIRST_TIMESTAMP + counter);
	const signature = createHmac("sha256", secret).update(`POST\n/agent/chat\n${timestamp}\n${BODY_SHA256}`).digest("hex");
	return new Request("http://gateway.test/agent/chat", {
		method: "POST",
		headers: { "x-client-id": clientId, "x-timestamp": timestamp, "x-signature": signature, "content-type": "application/json" },
		body: BODY,
	});
}

/** A KV namespace's `get` over a Map of JSON texts, counting reads. */
function mapNamespace(values: Map<string, string>) {
	const kv = {
		reads: 0,
		async get(key: string, options?: { type?: string }) {
			kv.reads++;
			const text = values.get(key) ?? null;
			return text !== null && options?.type === "json" ? JSON.parse(text) : text;
		},
	};
	return kv;
}

interface Setup {
	name: KeyringScenarioName;
	clients: number;
	env: Record<string, unknown>;
	worker: Worker;
	kv: ReturnType<typeof mapNamespace> | null;
	next: number;
}

/** workerd's pass-through stream, which forwarding pipes the origin's answer into; Node has only TransformStream (the same in all three scenarios). */
const runtime = globalThis as { IdentityTransformStream?: unknown };
runtime.IdentityTransformStream ??= class IdentityTransformStream extends TransformStream {};

async function setup(name: KeyringScenarioName, manyClients: number): Promise<Setup> {
	// A computed specifier: the Worker's sources typecheck under the Workers config, not this script's Node one.
	const workerModule = "../../src/worker.ts";
	const { createWorker } = (await import(workerModule)) as { createWorker: (deps: object) => Worker };
	const worker = createWorker({ log: { info() {}, warn() {}, error() {} }, fetchOrigin: async () => Response.json({ reply: "ok" }) });
	const base = { ENVIRONMENT: "production", ORIGIN_URL: "https://origin.invalid", METRICS_TOKEN: "bench", ORIGIN_TOKEN: "bench" };
	if (name === "hmac-clients") {
		const clients = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`client-${i}`, secretOf(i)]));
		return { name, clients: 30, env: { ...base, HMAC_CLIENTS: JSON.stringify(clients) }, worker, kv: null, next: 0 };
	}
	const count = name === "keyring-1" ? 1 : manyClients;
	const keyText = generateKeyringKey();
	const key = await importKeyringKey(decodeKeyringKey(keyText)!);
	const values = new Map<string, string>();
	const at = new Date().toISOString();
	for (let i = 0; i < count; i++) {
		const id = `client-${i}`;
		const record = { v: RECORD_VERSION, id, sealed: await sealRecord(key, id, { secrets: [secretOf(i)], disabled: false, revoked: false, createdAt: at, updatedAt: at }) };
		values.set(recordKey(id), JSON.stringify(record));
	}
	const kv = mapNamespace(values);
	// The longest cache period, so the measured requests see a warm cache (the steady state
	// adds one KV read, one decryption and one key import per client per period).
	const env = { ...base, KEYRING: kv, KEYRING_KEY: keyText, KEYRING_CACHE_MS: "300000", KEYRING_CACHE_MAX_ENTRIES: String(count) };
	return { name, clients: count, env, worker, kv, next: 0 };
}

async function answer(s: Setup): Promise<number> {
	const i = s.next++ % s.clients;
	const request = signedRequest(`client-${i}`, secretOf(i), s.next);
	const started = process.cpuUsage();
	const response = await s.worker.fetch(request, s.env, ctx);
	await response.arrayBuffer();
	const used = process.cpuUsage(started);
	if (response.status !== 200) throw new Error(`${s.name}: got ${response.status} for client-${i}, not 200`);
	return used.user + used.system;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export async function runKeyringScenarios(options: KeyringBenchOptions): Promise<KeyringScenarioResult[]> {
	const setups: Setup[] = [];
	for (const name of KEYRING_SCENARIOS) {
		options.log(`preparing ${name} ...`);
		const s = await setup(name, options.manyClients ?? 10_000);
		// Warm: every client's record read, opened and its key imported; the JIT settled.
		for (let i = 0; i < Math.max(s.clients, 2000); i++) await answer(s);
		setups.push(s);
	}
	const samples = new Map<KeyringScenarioName, number[]>(KEYRING_SCENARIOS.map((name) => [name, []]));
	const reads = new Map<KeyringScenarioName, number>(setups.map((s) => [s.name, s.kv?.reads ?? 0]));
	for (let round = 1; round <= options.rounds; round++) {
		options.log(`round ${round}/${options.rounds} ...`);
		// One request of each scenario in turn (starting with another each round): the
		// machine's drift and its neighbours' load fall on all of them alike.
		for (let i = 0; i < options.requests; i++) {
			for (let k = 0; k < setups.length; k++) {
				const s = setups[(round + k) % setups.length]!;
				samples.get(s.name)!.push(await answer(s));
			}
		}
	}
	return setups.map((s) => ({
		name: s.name,
		clients: s.clients,
		cpuUsPerRequest: median(samples.get(s.name)!),
		kvReads: (s.kv?.reads ?? 0) - reads.get(s.name)!,
	}));
}

export function formatKeyringReport(results: readonly KeyringScenarioResult[]): string {
	const base = results.find((r) => r.name === "hmac-clients");
	const lines = [
		"| scenario | clients | Worker code CPU µs/accepted request (median) | vs hmac-clients | KV reads while measured |",
		"|---|---:|---:|---:|---:|",
		...results.map(
			(r) => `| ${r.name} | ${r.clients} | ${r.cpuUsPerRequest.toFixed(0)} | ${base ? (r.cpuUsPerRequest / base.cpuUsPerRequest).toFixed(3) : "-"} | ${r.kvReads} |`,
		),
	];
	return `${lines.join("\n")}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
	const { values } = parseArgs({ options: { requests: { type: "string", default: "3000" }, rounds: { type: "string", default: "5" } } });
	const results = await runKeyringScenarios({ requests: Number(values.requests), rounds: Number(values.rounds), log: (line) => console.error(line) });
	console.log(formatKeyringReport(results));
}
