import { createHash, createHmac } from "node:crypto";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { runCli } from "./helpers/cli.ts";
import { SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";

/** Runs the signing CLI as a user would (`npm run sign -- ...` runs `node scripts/sign.ts ...`). */
const sign = (args: string[], env: Record<string, string> = { HMAC_SECRET: SECRET }, cwd?: string) => runCli("sign", args, { env, cwd });

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
});
