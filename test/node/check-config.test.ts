import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const execute = promisify(execFile);
const directory = mkdtempSync(join(tmpdir(), "check-config-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function checkConfig(contents: string): Promise<{ code: number; output: string }> {
	const file = join(directory, `${crypto.randomUUID()}.env`);
	writeFileSync(file, contents);
	try {
		const { stdout, stderr } = await execute(process.execPath, ["scripts/check-config.ts", file]);
		return { code: 0, output: stdout + stderr };
	} catch (error) {
		const failed = error as { code: number; stdout: string; stderr: string };
		return { code: failed.code, output: failed.stdout + failed.stderr };
	}
}

describe("npm run check-config", () => {
	it("accepts a complete production file (over the wrangler.toml vars)", async () => {
		const { code, output } = await checkConfig(
			["ORIGIN_URL=https://origin.example.com", 'HMAC_CLIENTS={"svc": ["new", "old"]}', "METRICS_TOKEN=m", "ORIGIN_TOKEN=o", "UPSTASH_REDIS_REST_URL=https://x.upstash.io", "UPSTASH_REDIS_REST_TOKEN=t"].join("\n"),
		);
		expect(output).toMatch(/: ok \(production\)\n$/);
		expect(code).toBe(0);
	});

	it("refuses a bad file, naming each variable and fault, never a value", async () => {
		const { code, output } = await checkConfig(
			["ORIGIN_URL=https://origin.example.com", 'HMAC_CLIENTS={"svc": "super-secret-value', "REDIS_REPLAY_TTL=0", "METRICS_TOKEN=m"].join("\n"),
		);
		expect(output).toContain("- HMAC_CLIENTS is not valid JSON");
		expect(output).toContain("- REDIS_REPLAY_TTL must be at least 1");
		expect(output).not.toContain("super-secret-value");
		expect(code).toBe(1);
	});

	it("fails a production file without METRICS_TOKEN, and warns of what weakens it", async () => {
		const { code, output } = await checkConfig(["ORIGIN_URL=https://origin.example.com", "HMAC_SECRET=s"].join("\n"));
		expect(output).toContain("warning: METRICS_TOKEN is required in production");
		expect(output).toContain("warning: no Upstash: replay protection is per isolate only");
		expect(code).toBe(1);
	});
});
