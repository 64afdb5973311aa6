// Which files of src/ run for one signed request, from the Worker's entry to the origin call
// (docs/design.md, "A signed request's way"). Run by test/node/signed-way.test.ts as its own
// Node process: `node test/node/helpers/signed-way.ts v1|v2` prints the files as JSON.
//
// The Worker's own entry (src/index.ts) runs in Node with production settings: Upstash and the
// origin are answered by a fake `fetch` (the Upstash SDK and the origin call both use the
// global one), and V8's precise coverage counts the functions each request calls. A first
// request warms the isolate (settings, keys, routes); its counts are dropped, and those of a
// second request, taken when it calls the origin, name the files of the way.
import { Session } from "node:inspector/promises";
import { registerHooks } from "node:module";
import { relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(import.meta.dirname, "../../..");
const ORIGIN = "https://origin.example";
const UPSTASH = "https://upstash.example";
const SECRET = "way-probe-secret-0123456789abcdef0123456789abcdef";

// `cloudflare:workers` exists only in workerd; the entry re-exports the Durable Object built on it.
registerHooks({
	resolve: (specifier, context, next) =>
		specifier === "cloudflare:workers" ? { url: "data:text/javascript,export class DurableObject {}", shortCircuit: true } : next(specifier, context),
});

// workerd's pass-through stream, which the answer's way (after the origin call) pipes into.
(globalThis as { IdentityTransformStream?: unknown }).IdentityTransformStream ??= TransformStream;

const scheme = process.argv[2] === "v2" ? "v2" : "v1";
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: false });

interface FunctionCoverage {
	functionName: string;
	ranges: { count: number }[];
}

/** The files of src/ with a function called since the last take (taking resets the counts). */
async function filesRun(): Promise<string[]> {
	const { result } = (await session.post("Profiler.takePreciseCoverage")) as unknown as { result: { url: string; functions: FunctionCoverage[] }[] };
	const files = new Set<string>();
	for (const script of result) {
		if (!script.url.startsWith(pathToFileURL(`${ROOT}/src/`).href)) continue;
		if (script.functions.some((fn) => fn.ranges[0]!.count > 0)) files.add(relative(ROOT, fileURLToPath(script.url)));
	}
	return [...files].sort();
}

let atOrigin: string[] | null = null;
/** The Upstash commands sent, by name: the way measured is the one that claims in Upstash. */
const upstashCommands: string[] = [];
globalThis.fetch = async (input, init) => {
	const request = new Request(input, init);
	if (request.url.startsWith(UPSTASH)) {
		const [command] = (await request.json()) as string[];
		upstashCommands.push(String(command).toLowerCase());
		return Response.json({ result: "OK" });
	}
	if (!request.url.startsWith(ORIGIN)) throw new Error(`unexpected fetch: ${request.url}`);
	// The request reached the origin: what ran since the warm-up is its way.
	atOrigin = await filesRun();
	return Response.json({ reply: "ok" });
};

const { default: worker } = (await import(pathToFileURL(`${ROOT}/src/index.ts`).href)) as { default: ExportedHandler };
const env = {
	ENVIRONMENT: "production",
	ORIGIN_URL: ORIGIN,
	ORIGIN_TOKEN: "way-probe-origin-token",
	HMAC_CLIENTS: JSON.stringify({ "way-probe": SECRET }),
	UPSTASH_REDIS_REST_URL: UPSTASH,
	UPSTASH_REDIS_REST_TOKEN: "way-probe-upstash-token",
	METRICS_TOKEN: "way-probe-metrics-token-0123456789abcdef",
};

const { signRequest } = (await import(pathToFileURL(`${ROOT}/src/client/sign.ts`).href)) as typeof import("../../../src/client/sign.ts");

/** A signed request of this scheme, built before it is sent: the client's signing is no part of the way. */
async function signed(content: string): Promise<Request> {
	const body = JSON.stringify({ messages: [{ role: "user", content }] });
	const signing = { clientId: "way-probe", secret: SECRET, method: "POST", path: "/agent/chat", body };
	const parts = await (scheme === "v2" ? signRequest({ ...signing, scheme: "v2" }) : signRequest(signing));
	return new Request("https://gateway.example/agent/chat", { method: "POST", headers: { ...parts.headers, "Content-Type": "application/json" }, body: parts.body });
}

async function send(request: Request): Promise<void> {
	const background: Promise<unknown>[] = [];
	const ctx = { waitUntil: (promise: Promise<unknown>) => background.push(promise), passThroughOnException() {}, props: {} };
	const response = await worker.fetch!(request as Parameters<NonNullable<ExportedHandler["fetch"]>>[0], env, ctx as unknown as ExecutionContext);
	await response.arrayBuffer();
	if (response.status !== 200) throw new Error(`the signed request answered ${response.status}`);
	await Promise.allSettled(background);
}

await send(await signed("warm-up"));
const measured = await signed("measured");
atOrigin = null;
upstashCommands.length = 0;
await filesRun();
await send(measured);
if (atOrigin === null) throw new Error("the measured request did not reach the origin");
if (upstashCommands.join() !== "set") throw new Error(`the measured request sent Upstash ${JSON.stringify(upstashCommands)}, not one SET`);
process.stdout.write(`${JSON.stringify(atOrigin)}\n`);
// The metrics pipeline may hold a timer: the measurement is done.
process.exit(0);
