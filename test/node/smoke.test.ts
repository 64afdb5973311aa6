import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bundleWorker } from "../../scripts/lib/build.ts";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { startGateway as startBundle } from "../../scripts/lib/gateway-runner.ts";
import { freePort } from "../../scripts/lib/processes.ts";
import { runCli } from "./helpers/cli.ts";
import { SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";
import { awayFromUtcMidnight, WINDOW_EDGE_MARGIN_MS } from "../fixtures/instants.ts";

/** The secrets smoke would otherwise find in the test process's environment, emptied. */
const NO_SECRETS = { SMOKE_HMAC_SECRET: "", HMAC_SECRET: "", E2E_SESSION_HMAC_SECRET: "", METRICS_TOKEN: "" };

const folders: string[] = [];
/** A working folder for smoke: empty, or holding a .dev.vars with these lines. */
function folder(devVars?: string[]): string {
	const directory = mkdtempSync(join(tmpdir(), "smoke-"));
	folders.push(directory);
	if (devVars !== undefined) writeFileSync(join(directory, ".dev.vars"), `# as npm run dev reads it\n${devVars.join("\n")}\n`);
	return directory;
}
afterAll(() => {
	for (const directory of folders) rmSync(directory, { recursive: true, force: true });
});

/** `npm run smoke -- --url URL args`, with the given secrets, from a folder without .dev.vars unless `cwd` says. */
const smoke = (url: string, args: string[] = [], env: Record<string, string> = {}, cwd = folder()) =>
	runCli("smoke", ["--url", url, ...args], { env: { ...NO_SECRETS, SMOKE_HMAC_SECRET: SECRET, METRICS_TOKEN: "smoke-metrics", ...env }, cwd }).then((r) => ({
		code: r.code,
		output: r.stdout + r.stderr,
	}));

// A day's or a month's budget spent here must stay spent for the file's few seconds: never across a UTC midnight.
beforeAll(() => awayFromUtcMidnight(), WINDOW_EDGE_MARGIN_MS + 5_000);

describe("npm run smoke against a local gateway (memory store)", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;
	let development: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url, METRICS_TOKEN: "smoke-metrics" });
		// As `npm run dev` runs it: development, no metrics token (open), the secret of .dev.vars.
		development = await startGateway({ ORIGIN_URL: origin.url, ENVIRONMENT: "development" });
	});
	afterAll(async () => {
		await gateway?.close();
		await development?.close();
		await origin?.close();
	});

	it("passes against the local gateway, with a readable report", async () => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed"]);
		expect(output).toContain("PASS  a signed request gives 200");
		expect(output).toContain("PASS  its replay gives 409");
		expect(output).toContain("PASS  replay claims reach the shared store: memory (no Upstash: allowed in development)");
		expect(output).toContain("PASS  a stub request is allowed");
		expect(output).toMatch(/^7 passed, 0 failed$/m);
		expect(code).toBe(0);
	});

	it("passes with no option but --url against `npm run dev`: secret and test modes from .dev.vars", async () => {
		// Quoted, with a comment: wrangler hands the gateway the value without either.
		const cwd = folder(["ENVIRONMENT=development", "ORIGIN_URL=http://127.0.0.1:8788", `HMAC_SECRET="${SECRET},an-older-one"   # newest first`]);
		const { code, output } = await runCli("smoke", ["--url", development.url], { env: NO_SECRETS, cwd }).then((r) => ({ code: r.code, output: r.stdout + r.stderr }));
		expect(output).toContain("Using .dev.vars for what the environment does not set (test modes expected allowed)");
		expect(output).toContain("PASS  a stub request is allowed");
		expect(output).toMatch(/^7 passed, 0 failed$/m);
		expect(code).toBe(0);
	});

	it("runs with no option at all, as npm run sign does: the URL from GATEWAY_URL, else npm run dev's (its usage says so)", async () => {
		const cwd = folder(["ENVIRONMENT=development", `HMAC_SECRET=${SECRET}`]);
		const { code, output } = await runCli("smoke", [], { env: { ...NO_SECRETS, GATEWAY_URL: development.url }, cwd }).then((r) => ({ code: r.code, output: r.stdout + r.stderr }));
		expect(output).toContain(`Smoke check of ${development.url}`);
		expect(output).toMatch(/^7 passed, 0 failed$/m);
		expect(code).toBe(0);
		const usage = await runCli("smoke", ["--help"], { env: NO_SECRETS, cwd });
		expect(usage.stdout).toMatch(/^usage: npm run smoke -- \[--url URL\] /);
		expect(usage.stdout).toContain("URL defaults to GATEWAY_URL from the environment, else http://127.0.0.1:8787 (npm run dev)");
	});

	it("an explicit --expect-stub wins over .dev.vars, and without .dev.vars stubs are expected refused", async () => {
		const cwd = folder(["ENVIRONMENT=development", `HMAC_SECRET=${SECRET}`]);
		const explicit = await runCli("smoke", ["--url", development.url, "--expect-stub", "refused"], { env: NO_SECRETS, cwd });
		expect(explicit.stdout).toContain("FAIL  a stub request is refused: expected the stub header to be ignored (401), got 200: test modes are allowed here");
		expect(explicit.code).toBe(1);
		const { code, output } = await smoke(gateway.url);
		expect(output).not.toContain(".dev.vars");
		expect(output).toContain("FAIL  a stub request is refused");
		expect(code).toBe(1);
	});

	it("after a 403 names the variable the secret came from", async () => {
		const fromEnvironment = await smoke(gateway.url, ["--expect-stub", "allowed"], { SMOKE_HMAC_SECRET: "another-secret" });
		expect(fromEnvironment.output).toContain(
			"FAIL  a signed request gives 200: 403 bad_signature: the smoke client's secret (SMOKE_HMAC_SECRET) differs from the gateway's for client smoke-check (its keyring record, else its entry in HMAC_CLIENTS, else HMAC_SECRET), or the keyring disabled or revoked it (npm run keys -- show smoke-check)",
		);
		// The replay check has nothing to replay: it says so rather than blame replay protection.
		expect(fromEnvironment.output).toContain(
			"FAIL  its replay gives 409: expected 409 replay, got 403 bad_signature: the signed request above was not accepted, so there was nothing to replay",
		);
		expect(fromEnvironment.output).not.toContain("is replay protection switched off?");
		expect(fromEnvironment.code).toBe(1);
		const cwd = folder(["ENVIRONMENT=development", "HMAC_SECRET=not-the-gateways"]);
		const fromDevVars = await runCli("smoke", ["--url", development.url], { env: NO_SECRETS, cwd });
		expect(fromDevVars.stdout).toContain("the smoke client's secret (HMAC_SECRET in .dev.vars) differs");
		expect(fromDevVars.code).toBe(1);
	});

	it("fails with the reason against a gateway whose replay protection is switched off", async () => {
		// The benchmark's floor: the same forwarding with no authentication and no replay check.
		const unprotected = await startBundle({ ORIGIN_URL: origin.url }, { scriptPath: bundleWorker(".build/test-bare", "scripts/bench/workers/forward-only.ts") });
		try {
			const { code, output } = await smoke(unprotected.url);
			expect(output).toContain("FAIL  missing signature headers give 401: expected 401 missing_headers, got 200");
			expect(output).toContain("FAIL  its replay gives 409: expected 409 replay, got 200: is replay protection switched off?");
			expect(code).toBe(1);
		} finally {
			await unprotected.close();
		}
	});

	it("after a 502 says the gateway does not reach its origin", async () => {
		const orphan = await startGateway({ ORIGIN_URL: `http://127.0.0.1:${await freePort()}`, METRICS_TOKEN: "smoke-metrics" });
		try {
			const { code, output } = await smoke(orphan.url, ["--expect-stub", "allowed"]);
			expect(output).toContain("FAIL  a signed request gives 200: expected 200, got 502 origin_unreachable: the gateway does not get an answer from its origin (ORIGIN_URL)");
			expect(code).toBe(1);
		} finally {
			await orphan.close();
		}
	});

	it.each(["v1", "v2"])("--path with a query (%s): sent, and signed as the scheme signs it", async (scheme) => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed", "--scheme", scheme, "--path", "/agent/chat?spend=3"]);
		expect(output).toContain("PASS  a signed request gives 200");
		expect(code).toBe(0);
	});

	it.each([
		[["--budget-client-id", "not an id"], "smoke: --budget-client-id must be a client id"],
		[["--budget-client-id", "b", "--token-limit", "0"], "smoke: --token-limit must be a whole number from 1"],
	])("%j: a usage error", async (args, line) => {
		const { code, output } = await smoke(gateway.url, args);
		expect(output.split("\n")[0]).toBe(line);
		expect(code).toBe(2);
	});

	it("refuses to run without a secret (usage error, exit 2)", async () => {
		const { code, output } = await smoke(gateway.url, [], { SMOKE_HMAC_SECRET: "" });
		expect(output).toContain("smoke: set SMOKE_HMAC_SECRET");
		expect(output).toContain("usage: npm run smoke");
		expect(code).toBe(2);
	});

	it("says why it cannot reach a URL where nothing listens, in one line, without a stack", async () => {
		const port = await freePort();
		const { code, output } = await smoke(`http://127.0.0.1:${port}`);
		expect(output.trim()).toBe(`smoke: could not reach http://127.0.0.1:${port}: connection refused: nothing listens there (is the gateway running? \`npm run dev\` locally)`);
		expect(code).toBe(1);
	});
});

describe.skipIf(!available("redis-server", "redis-server"))("npm run smoke against a gateway on Upstash", () => {
	const stack = useUpstashStack("smoke-upstash-token", { METRICS_TOKEN: "smoke-metrics" });

	it("passes while claims reach Upstash", async () => {
		const gateway = await stack.gateway();
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed"]);
		expect(output).toContain("PASS  replay claims reach the shared store: upstash, breaker closed");
		expect(output).toMatch(/^7 passed, 0 failed$/m);
		expect(code).toBe(0);
	});

	it("fails while Upstash is down, though the memory fallback still answers the replay with 409", async () => {
		const gateway = await stack.gateway();
		await stack.upstash.close();
		try {
			const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed"]);
			expect(output).toContain("PASS  its replay gives 409");
			expect(output).toContain("FAIL  replay claims reach the shared store: Upstash is configured but claims are not reaching it");
			expect(code).toBe(1);
			// Without the metrics token, the anonymous /healthz status says it too.
			const anonymous = await smoke(gateway.url, ["--expect-stub", "allowed"], { METRICS_TOKEN: "" });
			expect(anonymous.output).toContain("FAIL  replay claims reach the shared store: GET /healthz: degraded");
			expect(anonymous.code).toBe(1);
		} finally {
			await stack.restartUpstash();
		}
	});
});

describe.skipIf(!available("redis-server", "redis-server"))("npm run smoke --budget-client-id against a gateway on Upstash", () => {
	const stack = useUpstashStack("smoke-budget-token", {
		METRICS_TOKEN: "smoke-metrics",
		ORIGIN_TOKEN: "smoke-origin-token",
		// A month's budget: its window turns over once a month, not under a test at midnight.
		CLIENT_LIMITS: JSON.stringify({ "smoke-budget": { monthly_tokens: 100_000 } }),
	});
	let gateway: RunningGateway;
	// A gateway per test (the stack closes them after each), with a replay prefix, so a budget, of its own.
	beforeEach(async () => {
		gateway = await stack.gateway();
		// The demo origin reports a stream's (and, on request, a chat answer's) usage to this gateway.
		stack.origin.setGateway(gateway.url);
	});
	afterAll(() => stack.origin?.setGateway(null));
	const budgetSmoke = (more: string[] = []) => smoke(gateway.url, ["--expect-stub", "allowed", "--budget-client-id", "smoke-budget", ...more]);

	it("passes: a 200 with the budget's RateLimit fields, the origin's usage within the hold, its report back at the gateway", async () => {
		const { code, output } = await budgetSmoke();
		expect(output).toMatch(/PASS {2}client smoke-budget gets 200 with its token budget's RateLimit fields: 200, RateLimit: "monthly_tokens";r=98976;t=\d+/);
		expect(output).toContain("PASS  the origin spends within the hold the gateway forwarded: X-Token-Usage: 5, within the hold (at most 1024)");
		expect(output).toMatch(/PASS {2}the origin's report reaches the gateway: the hold came back: monthly_tokens r=98976, then r=9999\d on a probe/);
		expect(output).toMatch(/^10 passed, 0 failed$/m);
		expect(code).toBe(0);
	});

	it("a report through the usage route reaches the gateway too, though the answer then carries no X-Token-Usage", async () => {
		const { code, output } = await budgetSmoke(["--path", "/agent/chat?report=route", "--scheme", "v2"]);
		expect(output).toContain("FAIL  the origin spends within the hold the gateway forwarded: the answer carries no X-Token-Usage");
		expect(output).toContain("PASS  the origin's report reaches the gateway: the hold came back");
		expect(code).toBe(1);
	});

	it("fails an origin that overruns its hold, and one that never reports", async () => {
		const overrun = await budgetSmoke(["--path", "/agent/chat?spend=5000&ignore_hold=1", "--token-limit", "64"]);
		expect(overrun.output).toContain("FAIL  the origin spends within the hold the gateway forwarded: the origin reported 5000 tokens for a hold of at most 64: does it read X-Token-Hold?");
		expect(overrun.code).toBe(1);
		const silent = await budgetSmoke(["--path", "/agent/chat?report=none"]);
		expect(silent.output).toContain("FAIL  the origin's report reaches the gateway: the first request's hold is still held after 5 probes: no report reached the gateway");
		expect(silent.code).toBe(1);
	});

	it("fails a client without a budget, naming what to configure", async () => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed", "--budget-client-id", "no-budget"]);
		expect(output).toContain("FAIL  client no-budget gets 200 with its token budget's RateLimit fields: no-budget has no token budget: give it daily_tokens or monthly_tokens in CLIENT_LIMITS");
		expect(output).toContain("FAIL  the origin spends within the hold the gateway forwarded: not checked: no budgeted request was accepted");
		expect(code).toBe(1);
	});
});
