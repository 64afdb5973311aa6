import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HmacV2Vectors } from "../fixtures/hmac-vectors.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { runCli } from "./helpers/cli.ts";
import { SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";
import { awayFromUtcMidnight, WINDOW_EDGE_MARGIN_MS } from "../fixtures/instants.ts";

/** Runs the signing CLI as a user would (`npm run sign -- ...` runs `node scripts/sign.ts ...`). */
const sign = (args: string[], env: Record<string, string> = { HMAC_SECRET: SECRET }, cwd?: string) => runCli("sign", args, { env, cwd });

// A day's or a month's budget spent here must stay spent for the file's few seconds: never across a UTC midnight.
beforeAll(() => awayFromUtcMidnight(), WINDOW_EDGE_MARGIN_MS + 5_000);

describe("the signing CLI against a local gateway", () => {
	let origin: DemoOrigin;
	let memoryGateway: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		memoryGateway = await startGateway({ ORIGIN_URL: origin.url });
	});
	afterAll(async () => {
		await memoryGateway?.close();
		await origin?.close();
	});

	it("prints a curl command with the three headers and the exact body", async () => {
		const { code, stdout } = await sign(["--url", "http://gw.test", "--timestamp", "1763000000000", "--data", '{"messages":[]}']);
		expect(code).toBe(0);
		// Computed here with Node's own crypto, independently of the signer.
		const bodyHash = createHash("sha256").update('{"messages":[]}').digest("hex");
		const expected = createHmac("sha256", SECRET).update(`POST\n/agent/chat\n1763000000000\n${bodyHash}`).digest("hex");
		expect(stdout.trim()).toBe(
			"curl -sS -i -X POST 'http://gw.test/agent/chat' -H 'X-Client-Id: dev-cli' -H 'X-Timestamp: 1763000000000' " +
				`-H 'X-Signature: ${expected}' -H 'Content-Type: application/json' --data-binary '{"messages":[]}'`,
		);
	});

	it("is accepted once and refused as a replay the second time (memory store)", async () => {
		const timestamp = String(Date.now());
		const first = await sign(["--send", "--url", memoryGateway.url, "--timestamp", timestamp]);
		expect(first.code).toBe(0);
		expect(first.stdout).toMatch(/^HTTP 200/);
		expect(first.stdout).toContain("Demo answer to: Hello from the signing CLI");
		const second = await sign(["--send", "--url", memoryGateway.url, "--timestamp", timestamp]);
		expect(second.code).toBe(1);
		expect(second.stdout).toMatch(/^HTTP 409/);
		expect(second.stdout).toContain('"code":"replay"');
	});

	it("docs/protocol.md's budget on your own machine: the CLIENT_LIMITS it gives and its two commands, 200 then 429", async () => {
		const section = readFileSync("docs/protocol.md", "utf8").split("To see a budget on [your own machine]")[1]!.split("Budgets there are")[0]!;
		const limits = /`CLIENT_LIMITS=(\{.*\})`/.exec(section)![1]!;
		const commands = /```sh\n([\s\S]*?)\n```/.exec(section)![1]!.split("\n");
		// `npm run sign -- ARGS   # comment`: the arguments, a quoted one without its quotes.
		const args = commands.map((line) => [...line.split("#")[0]!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(4));
		expect(args).toEqual([["--send", "--path", "/agent/chat?spend=100"], ["--send"]]);
		const gateway = await startGateway({ ORIGIN_URL: origin.url, CLIENT_LIMITS: limits });
		try {
			const first = await sign([...args[0]!, "--url", gateway.url]);
			expect(first.stdout).toMatch(/^HTTP 200/);
			expect(first.stdout).toMatch(/^ratelimit: "monthly_tokens";r=0;t=\d+$/m);
			const spent = await sign([...args[1]!, "--url", gateway.url]);
			expect(spent.stdout).toMatch(/^HTTP 429/);
			expect(spent.stdout).toContain('"code":"token_budget_exhausted"');
		} finally {
			await gateway.close();
		}
	});

	it("signs with a timestamp in milliseconds by default (now, not seconds)", async () => {
		const before = Date.now();
		const { code, stdout } = await sign(["--url", "http://gw.test"]);
		const after = Date.now();
		expect(code).toBe(0);
		const timestamp = Number(/-H 'X-Timestamp: ([0-9]+)'/.exec(stdout)?.[1]);
		expect(timestamp).toBeGreaterThanOrEqual(before);
		expect(timestamp).toBeLessThanOrEqual(after);
		// And the default is what the gateway accepts: a fresh request signed without --timestamp.
		const sent = await sign(["--send", "--url", memoryGateway.url]);
		expect(sent.stdout).toMatch(/^HTTP 200/);
	});

	it("fails with a usage error and no request when the secret is missing or an option is bad", async () => {
		// From a folder without .dev.vars (the CLI's fallback for local use).
		const noSecret = await sign(["--send", "--url", memoryGateway.url], { HMAC_SECRET: "" }, tmpdir());
		expect(noSecret.code).toBe(2);
		expect(noSecret.stderr).toContain("set HMAC_SECRET");
		const badPath = await sign(["--path", "/other"]);
		expect(badPath.code).toBe(2);
		expect(badPath.stderr).toContain("--path must start with /agent/");
	});
});

/** A folder of its own holding these files, removed after the file's tests. */
const folders: string[] = [];
afterAll(() => folders.forEach((folder) => rmSync(folder, { recursive: true, force: true })));
function folderWith(files: Record<string, string | Uint8Array>): string {
	const folder = mkdtempSync(join(tmpdir(), "sign-cli-"));
	folders.push(folder);
	for (const [name, content] of Object.entries(files)) writeFileSync(join(folder, name), content);
	return folder;
}

/** The value of one `-H 'Name: value'` of a printed curl command. */
const headerOf = (curl: string, name: string) => new RegExp(`-H '${name}: ([^']*)'`).exec(curl)?.[1];

describe("the signing CLI as a reference implementation: fixed inputs, the same output", () => {
	const v2 = JSON.parse(readFileSync("test/vectors/hmac-v2.json", "utf8")) as HmacV2Vectors;

	it.each(["get-stream-with-query", "post-chat", "post-alias-path-and-alg"])("--scheme v2 --created --nonce reproduces the independent vector %s", async (name) => {
		const vector = v2.cases.find((c) => c.name === name)!;
		const { keyid, created, nonce } = vector.inputs;
		const args = ["--scheme", "v2", "--url", "http://gw.test", "--method", vector.method, "--path", vector.target, "--client-id", keyid, "--created", String(created), "--nonce", nonce];
		if (vector.method === "POST") args.push("--data", vector.body);
		if (vector.inputs.alg !== undefined) args.push("--alg");
		const first = await sign(args, { HMAC_SECRET: vector.secret });
		expect(first.stderr).toBe("");
		expect(first.code).toBe(0);
		expect(headerOf(first.stdout, "Signature-Input")).toBe(vector.headers["signature-input"]);
		expect(headerOf(first.stdout, "Signature")).toBe(vector.headers.signature);
		expect(headerOf(first.stdout, "Content-Digest")).toBe(vector.headers["content-digest"]);
		expect(first.stdout).toContain(`'http://gw.test${vector.target}'`);
		expect((await sign(args, { HMAC_SECRET: vector.secret })).stdout).toBe(first.stdout);
	});

	it("v2 without --created and --nonce signs now with a fresh nonce each time", async () => {
		const before = Math.floor(Date.now() / 1000);
		const [a, b] = await Promise.all([sign(["--scheme", "v2", "--url", "http://gw.test"]), sign(["--scheme", "v2", "--url", "http://gw.test"])]);
		const params = (out: string) => /;created=(\d+);keyid="dev-cli";nonce="([A-Za-z0-9_-]{22})"'/.exec(out)!;
		expect(Number(params(a.stdout)[1])).toBeGreaterThanOrEqual(before);
		expect(Number(params(a.stdout)[1])).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
		expect(params(a.stdout)[2]).not.toBe(params(b.stdout)[2]);
	});

	it("--data-file signs and sends the file's exact bytes (a body too large for one argument)", async () => {
		const body = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.alloc(500 * 1024, "x"), Buffer.from('\u00e9"}]}')]);
		const folder = folderWith({ "body.json": body });
		const { code, stdout } = await sign(["--url", "http://gw.test", "--timestamp", "1763000000000", "--data-file", join(folder, "body.json")]);
		expect(code).toBe(0);
		const expected = createHmac("sha256", SECRET).update(`POST\n/agent/chat\n1763000000000\n${createHash("sha256").update(body).digest("hex")}`).digest("hex");
		expect(headerOf(stdout, "X-Signature")).toBe(expected);
		expect(stdout).toContain(`--data-binary '@${join(folder, "body.json")}'`);
	});

	it.each([
		[["--scheme", "v2", "--nonce", "too-short"], "sign: --nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -"],
		[["--scheme", "v2", "--created", "1764158400.5"], "sign: --created must be integer seconds since the epoch"],
		[["--scheme", "v2", "--timestamp", "1763000000000"], "sign: --timestamp is for v1 (v2 takes --created, in seconds)"],
		[["--created", "1764158400"], "sign: --created, --nonce and --alg are for --scheme v2 (v1 takes --timestamp)"],
		[["--method", "GET", "--data", "{}"], "sign: a GET carries no body: --data and --data-file are for POST"],
		[["--data", "{}", "--data-file", "x.json"], "sign: --data and --data-file exclude each other"],
		[["--data-file", "/no/such/file.json"], "sign: cannot read --data-file /no/such/file.json (ENOENT)"],
	])("%j: one line and the usage, exit 2", async (args, line) => {
		const { code, stdout, stderr } = await sign(args);
		expect(stderr.split("\n")[0]).toBe(line);
		expect(stdout).toBe("");
		expect(code).toBe(2);
	});
});

describe("the signing CLI's secret from .dev.vars, read as wrangler reads it", () => {
	it.each([
		['HMAC_SECRET="quoted-secret"   # a comment', "dev-cli", "quoted-secret", "HMAC_SECRET in .dev.vars"],
		["HMAC_SECRET='newest,older'", "dev-cli", "newest", "HMAC_SECRET in .dev.vars"],
		['HMAC_SECRET=shared\nHMAC_CLIENTS={"web-app": ["own-newest", "own-older"], "svc": "svc-secret"}', "web-app", "own-newest", 'HMAC_CLIENTS["web-app"] in .dev.vars'],
		['HMAC_SECRET=shared\nHMAC_CLIENTS={"web-app": "own"}', "other", "shared", "HMAC_SECRET in .dev.vars"],
		["E2E_SESSION_HMAC_SECRET=alias", "dev-cli", "alias", "E2E_SESSION_HMAC_SECRET in .dev.vars"],
	])("%j, client %s: signs with %j", async (devVars, clientId, secret, source) => {
		const cwd = folderWith({ ".dev.vars": `${devVars}\n` });
		const { code, stdout, stderr } = await sign(["--url", "http://gw.test", "--timestamp", "1763000000000", "--client-id", clientId, "--data", "{}"], { HMAC_SECRET: "" }, cwd);
		expect(stderr).toBe(`sign: using ${source}\n`);
		expect(code).toBe(0);
		const expected = createHmac("sha256", secret).update(`POST\n/agent/chat\n1763000000000\n${createHash("sha256").update("{}").digest("hex")}`).digest("hex");
		expect(headerOf(stdout, "X-Signature")).toBe(expected);
	});

	it("a HMAC_CLIENTS that is not JSON: one line naming it, never its value", async () => {
		const cwd = folderWith({ ".dev.vars": "HMAC_CLIENTS={web-app: secret-value}\n" });
		const { code, stderr } = await sign(["--url", "http://gw.test"], { HMAC_SECRET: "" }, cwd);
		expect(stderr).toBe("sign: HMAC_CLIENTS in .dev.vars is not valid JSON (one JSON object on one line)\n");
		expect(code).toBe(1);
	});
});

describe.skipIf(!available("redis-server", "redis-server"))("the signing CLI against a gateway with Redis behind the local Upstash server", () => {
	const stack = useUpstashStack("cli-token");

	it("is accepted once and refused as a replay the second time", async () => {
		const gateway = await stack.gateway();
		const { upstash } = stack;
		const timestamp = String(Date.now());
		upstash.resetStats();
		expect((await sign(["--send", "--url", gateway.url, "--timestamp", timestamp])).stdout).toMatch(/^HTTP 200/);
		expect((await sign(["--send", "--url", gateway.url, "--timestamp", timestamp])).stdout).toMatch(/^HTTP 409/);
		// The replay is answered from the isolate's own decisions, without a second SET.
		expect(upstash.stats.commands.get("set")).toBe(1);
	});

	it("--token-limit lowers the hold the origin gets; a spent budget is 429 token_budget_exhausted, named with when to come back", async () => {
		// A month's budget: its window turns over once a month, not once a day, under the test.
		const gateway = await stack.gateway({ CLIENT_LIMITS: JSON.stringify({ "dev-cli": { monthly_tokens: 3 } }) });
		const first = await sign(["--send", "--url", gateway.url, "--token-limit", "2"]);
		expect(first.stdout).toMatch(/^HTTP 200/);
		// The demo origin stopped at its hold: two words of its reply.
		expect(first.stdout).toContain('"reply":"Demo answer"');
		expect(first.stderr).toBe("sign: tokens left: monthly_tokens 1\n");
		expect((await sign(["--send", "--url", gateway.url])).stderr).toBe("sign: tokens left: monthly_tokens 0\n");
		const spent = await sign(["--send", "--url", gateway.url]);
		expect(spent.stdout).toMatch(/^HTTP 429/);
		const retryAfter = Number(/^retry-after: (\d+)$/m.exec(spent.stdout)?.[1]);
		const now = new Date();
		const toMonthEnd = Math.ceil((Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000);
		expect(Math.abs(retryAfter - toMonthEnd)).toBeLessThanOrEqual(5);
		expect(spent.stderr).toBe(
			"sign: HTTP 429 token_budget_exhausted: the monthly_tokens budget is spent until its window ends\n" +
				`sign: HTTP 429: retry after ${retryAfter} s (run this command again then: it signs anew)\n`,
		);
		expect(spent.code).toBe(1);
	});
});

/** A server that answers every request with `answer` and keeps the headers it was sent. */
async function cannedGateway(answer: { status: number; headers: Record<string, string>; body: string }) {
	const seen: http.IncomingHttpHeaders[] = [];
	const server = http.createServer((request, response) => {
		seen.push(request.headers);
		request.resume().on("end", () => response.writeHead(answer.status, answer.headers).end(answer.body));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		seen,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

describe("the signing CLI and token budgets (docs/design.md, \"Token budgets\")", () => {
	const exhausted = {
		status: 429,
		headers: {
			"Content-Type": "application/json",
			"Retry-After": "38112",
			"RateLimit-Policy": '"daily_tokens";q=100000;w=86400',
			RateLimit: '"daily_tokens";r=0;t=38112, "monthly_tokens";r=912000;t=1594512',
		},
		body: JSON.stringify({ detail: "This client used its token budget for this window; sign anew after Retry-After.", code: "token_budget_exhausted" }),
	};

	it("--token-limit sends X-Token-Limit (v2 covers it); a 429 token_budget_exhausted names the budget and when to come back", async () => {
		const gateway = await cannedGateway(exhausted);
		try {
			const v1 = await sign(["--send", "--url", gateway.url, "--token-limit", "64"]);
			expect(gateway.seen[0]!["x-token-limit"]).toBe("64");
			expect(v1.stdout).toMatch(/^HTTP 429/);
			expect(v1.stdout).toContain('"code":"token_budget_exhausted"');
			expect(v1.stderr).toBe(
				"sign: HTTP 429 token_budget_exhausted: the daily_tokens budget is spent until its window ends\n" +
					"sign: HTTP 429: retry after 38112 s (run this command again then: it signs anew)\n",
			);
			expect(v1.code).toBe(1);
			const v2 = await sign(["--send", "--url", gateway.url, "--token-limit", "64", "--scheme", "v2"]);
			expect(gateway.seen[1]!["x-token-limit"]).toBe("64");
			expect(gateway.seen[1]!["signature-input"]).toContain('"x-token-limit"');
			expect(v2.code).toBe(1);
			const without = await sign(["--send", "--url", gateway.url]);
			expect(gateway.seen[2]!).not.toHaveProperty("x-token-limit");
			expect(without.stderr).toContain("token_budget_exhausted");
		} finally {
			await gateway.close();
		}
	});

	it("an accepted answer names the tokens left; a backend's own JSON with a code is not read as the gateway's", async () => {
		const gateway = await cannedGateway({
			status: 200,
			headers: { "Content-Type": "application/json", "X-Auth-Mode": "hmac", RateLimit: '"daily_tokens";r=4000;t=90, "monthly_tokens";r=700;t=900, "rpm";r=5;t=60' },
			body: JSON.stringify({ reply: "hi", code: "token_budget_exhausted" }),
		});
		try {
			const { code, stderr } = await sign(["--send", "--url", gateway.url]);
			expect(stderr).toBe("sign: tokens left: daily_tokens 4000, monthly_tokens 700\n");
			expect(code).toBe(0);
		} finally {
			await gateway.close();
		}
	});

	it.each(["0", "-5", "1.5", "many"])("--token-limit %s: a usage error, nothing sent", async (value) => {
		const { code, stderr, stdout } = await sign(["--send", "--url", "http://127.0.0.1:9", `--token-limit=${value}`]);
		expect(stderr.split("\n")[0]).toBe("sign: --token-limit must be a whole number from 1");
		expect(stdout).toBe("");
		expect(code).toBe(2);
	});
});
