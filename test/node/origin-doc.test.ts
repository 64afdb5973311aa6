// docs/origin.md's Python backend, run as printed: extracted from the page, started with
// python3, and called as the gateway calls it (docs/design.md, "Token budgets").
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freePort, waitForPort } from "../../scripts/lib/processes.ts";
import { signRequest } from "../../src/client/index.ts";
import { SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";
import { until } from "./helpers/until.ts";
import { usageRoute } from "./helpers/usage-route.ts";
import { awayFromUtcMidnight, WINDOW_EDGE_MARGIN_MS } from "../fixtures/instants.ts";

/** The page's one `python` block, as a file of its own. */
function originProgram(): string {
	const blocks = [...readFileSync("docs/origin.md", "utf8").matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
	if (blocks.length !== 1) throw new Error(`docs/origin.md has ${blocks.length} python blocks, not 1`);
	const directory = mkdtempSync(join(tmpdir(), "origin-doc-"));
	const file = join(directory, "origin.py");
	writeFileSync(file, blocks[0]!);
	return file;
}

interface PythonOrigin {
	url: string;
	output: () => string;
	stop(): Promise<void>;
}

/** Starts the page's program on `port` (a free one unless given), reporting to `gatewayUrl` with `originToken`. */
async function startPythonOrigin(gatewayUrl: string, originToken: string, chosenPort?: number): Promise<PythonOrigin> {
	const file = originProgram();
	const port = chosenPort ?? (await freePort());
	let output = "";
	const child: ChildProcess = spawn("python3", [file], { env: { ...process.env, GATEWAY_URL: gatewayUrl, ORIGIN_TOKEN: originToken, PORT: String(port) } });
	child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
	child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
	await waitForPort(port, 10_000, () => child.exitCode === null).catch((error: Error) => {
		throw new Error(`${error.message}: ${output}`);
	});
	return {
		url: `http://127.0.0.1:${port}`,
		output: () => output,
		async stop() {
			if (child.exitCode === null) {
				const exited = new Promise((resolve) => child.once("exit", resolve));
				child.kill("SIGTERM");
				await exited;
			}
			rmSync(join(file, ".."), { recursive: true, force: true });
		},
	};
}

const TOKEN = "origin-token-of-the-docs-test";

// A day's or a month's budget spent here must stay spent for the file's few seconds: never across a UTC midnight.
beforeAll(() => awayFromUtcMidnight(), WINDOW_EDGE_MARGIN_MS + 5_000);

describe.skipIf(!available("python3", "python3"))("docs/origin.md: the Python backend, called as the gateway calls it", () => {
	let gateway: Awaited<ReturnType<typeof usageRoute>>;
	let origin: PythonOrigin;
	beforeAll(async () => {
		gateway = await usageRoute();
		origin = await startPythonOrigin(gateway.url, TOKEN);
	});
	afterAll(async () => {
		await origin?.stop();
		await gateway?.close();
	});
	beforeEach(() => void gateway.reports.splice(0));

	const chat = (headers: Record<string, string>, body = JSON.stringify({ messages: [{ role: "user", content: "one two three four" }] })) =>
		fetch(`${origin.url}/agent/chat`, { method: "POST", headers: { "Content-Type": "application/json", "X-Gateway-Token": TOKEN, ...headers }, body });

	it("refuses a request without the gateway's token (401), or with another", async () => {
		expect((await chat({ "X-Gateway-Token": "" })).status).toBe(401);
		expect((await chat({ "X-Gateway-Token": `${TOKEN}x` })).status).toBe(401);
		expect((await fetch(`${origin.url}/agent/stream`)).status).toBe(401);
	});

	it("a chat answer stops at X-Token-Hold and reports what it spent in X-Token-Usage, never to the route", async () => {
		const held = await chat({ "X-Token-Hold": "3", "X-Token-Reservation": "r-chat" });
		expect(await held.json()).toEqual({ reply: "You asked: one" });
		expect(held.headers.get("x-token-usage")).toBe("3");
		const free = await chat({});
		expect(await free.json()).toEqual({ reply: "You asked: one two three four" });
		expect(free.headers.get("x-token-usage")).toBe("6");
		expect(gateway.reports).toEqual([]);
	});

	it("a stream stops at the hold, then reports to POST /gateway/usage with the origin token", async () => {
		const response = await fetch(`${origin.url}/agent/stream?prompt=a%20b%20c%20d`, { headers: { "X-Gateway-Token": TOKEN, "X-Token-Hold": "3", "X-Token-Reservation": "r-stream" } });
		const events = (await response.text()).trim().split("\n").map((line) => JSON.parse(line) as { type: string; text?: string });
		// The lines of docs/protocol.md, "The streamed answer": start (with its model), the tokens, done.
		expect(events).toEqual([{ type: "start", model: "stand-in" }, { type: "token", text: "You" }, { type: "token", text: "asked:" }, { type: "token", text: "a" }, { type: "done" }]);
		await until(() => gateway.reports.length === 1, "the usage report");
		expect(gateway.reports[0]).toEqual({ path: "POST /gateway/usage", authorization: `Bearer ${TOKEN}`, body: { reservation: "r-stream", tokens: 3 } });
	});

	it("a stream without a reservation reports nothing; bad input is a 400, and the next request is served", async () => {
		await (await fetch(`${origin.url}/agent/stream`, { headers: { "X-Gateway-Token": TOKEN } })).text();
		for (const body of ["not json", "[]", '{"messages": []}', '{"messages": "x"}']) expect((await chat({}, body)).status, body).toBe(400);
		expect((await chat({ "X-Token-Hold": "junk" })).headers.get("x-token-usage")).toBe("6");
		expect(gateway.reports).toEqual([]);
	});
});

/**
 * The page's backend behind a gateway whose budgets are where `store` says, for a client with a
 * token budget: what the backend reports settles the reservation, by header and by the usage route.
 */
function budgetedBackend(store: () => Record<string, string>) {
	let gateway: RunningGateway;
	let origin: PythonOrigin;
	const CLIENT = "py-agent";
	beforeAll(async () => {
		// The backend must know the gateway's address, and the gateway the backend's: the port first.
		const port = await freePort();
		gateway = await startGateway({
			ORIGIN_URL: `http://127.0.0.1:${port}`,
			ORIGIN_TOKEN: TOKEN,
			// A month's budget: its window turns over once a month, not under a test at midnight.
			CLIENT_LIMITS: JSON.stringify({ [CLIENT]: { monthly_tokens: 1000, token_hold: 50 } }),
			...store(),
		});
		origin = await startPythonOrigin(gateway.url, TOKEN, port);
	});
	afterAll(async () => {
		await origin?.stop();
		await gateway?.close();
	});

	/** A request of the budgeted client, signed now; its answer and what is left of the month's budget. */
	const send = async (method: "GET" | "POST", path: string, query = "", tokenLimit?: number) => {
		const body = method === "POST" ? JSON.stringify({ messages: [{ role: "user", content: "one two three four" }] }) : undefined;
		const { headers } = await signRequest({ clientId: CLIENT, secret: SECRET, method, path, body, tokenLimit });
		const response = await gateway.fetch(path + query, { method, headers: { ...headers, ...(body === undefined ? {} : { "Content-Type": "application/json" }) }, body });
		const text = await response.text();
		const left = Number(/"monthly_tokens";r=(\d+)/.exec(response.headers.get("ratelimit") ?? "")?.[1]);
		return { response, text, left };
	};
	/** A stream's lines, each by its type (and a token by its text). */
	const lines = (text: string) => text.trim().split("\n").map((line) => JSON.parse(line) as { type: string; text?: string });

	it("a chat answer: held 50, the backend spends 6 and says so in X-Token-Usage (passed on), and the month is charged 6", async () => {
		const first = await send("POST", "/agent/chat");
		expect(first.response.status).toBe(200);
		expect(JSON.parse(first.text)).toEqual({ reply: "You asked: one two three four" });
		expect(first.response.headers.get("x-token-usage")).toBe("6");
		expect(first.response.headers.get("ratelimit-policy")).toBe('"monthly_tokens";q=1000;qu="tokens"');
		expect(first.left).toBe(950);
		// Probes of a 2-token hold, which the backend spends whole: once the header's settle ran, 1000 - 6 - 2 per probe.
		let probes = 0;
		await until(async () => {
			const probe = await send("POST", "/agent/chat", "", 2);
			expect(JSON.parse(probe.text)).toEqual({ reply: "You asked:" });
			return probe.left === 1000 - 6 - 2 * ++probes;
		}, "the chat answer's X-Token-Usage settled");
	});

	it("a stream: the documented lines, stopped at the client's X-Token-Limit, and its report to POST /gateway/usage gives the rest of a hold back", async () => {
		const limited = await send("GET", "/agent/stream", "?prompt=a%20b%20c%20d", 3);
		expect(limited.response.status).toBe(200);
		expect(limited.response.headers.get("content-type")).toBe("application/x-ndjson");
		expect(lines(limited.text)).toEqual([{ type: "start", model: "stand-in" }, { type: "token", text: "You" }, { type: "token", text: "asked:" }, { type: "token", text: "a" }, { type: "done" }]);
		const before = await send("POST", "/agent/chat", "", 1);
		const stream = await send("GET", "/agent/stream", "?prompt=a%20b");
		expect(lines(stream.text).map((line) => line.type)).toEqual(["start", "token", "token", "token", "token", "done"]);
		// Held 50, spent 4: after the report, a probe of one token sees 46 come back.
		expect(stream.left).toBe(before.left - 50);
		await until(async () => (await send("POST", "/agent/chat", "", 1)).left >= before.left - 4 - 1 - 1, "the stream's report settled", 10_000);
		expect(origin.output()).not.toContain("usage report failed");
	});
}

describe.skipIf(!available("python3", "python3") || !available("redis-server", "redis-server"))("docs/origin.md: the Python backend behind a gateway with Upstash, for a client with a token budget", () => {
	const stack = useUpstashStack("origin-doc-upstash-token");
	budgetedBackend(() => ({
		UPSTASH_REDIS_REST_URL: stack.upstash.url,
		UPSTASH_REDIS_REST_TOKEN: "origin-doc-upstash-token",
		REDIS_REPLAY_PREFIX: `test:${crypto.randomUUID()}:`,
		// A claim past the 200 ms default on a loaded machine is confirmed, and a confirmed claim's
		// answer cannot tell what is left (no `r=`): these tests read what is left.
		REPLAY_TIMEOUT_MS: "5000",
	}));
});

// npm run dev's default: no Upstash, so the memory limiter holds the budget and settles the reports.
describe.skipIf(!available("python3", "python3"))("docs/origin.md: the Python backend behind a gateway without Upstash (the memory store), for a client with a token budget", () => {
	budgetedBackend(() => ({}));
});
