import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.ts";

const directory = mkdtempSync(join(tmpdir(), "limits-cli-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Everything production wants (per-client secrets, Upstash, the key of wrangler.toml's KEYRING binding), so only CLIENT_LIMITS is reported. */
const COMPLETE = [
	"KEYRING_KEY=a2V5cmluZy1rZXktb2YtdGhpcnR5LXR3by1ieXRlcyE=",
	"ORIGIN_URL=https://origin.example.com",
	`HMAC_CLIENTS={"svc": "a-production-secret-of-40-characters-!!!"}`,
	"METRICS_TOKEN=m",
	"ORIGIN_TOKEN=o",
	"UPSTASH_REDIS_REST_URL=https://x.upstash.io",
	"UPSTASH_REDIS_REST_TOKEN=t",
];

function settings(...lines: string[]): string {
	const path = join(directory, `${crypto.randomUUID()}.env`);
	writeFileSync(path, [...COMPLETE, ...lines].join("\n"));
	return path;
}

describe("npm run check-config knows CLIENT_LIMITS", () => {
	it("takes a sound one without a word", async () => {
		const path = settings('CLIENT_LIMITS={"*": {"rpm": 60, "rpd": 5000}, "batch": {"concurrent": 4, "label": true}}');
		const result = await runCli("check-config", [path]);
		expect(result.stdout.trim()).toBe(`${path}: ok (production)`);
		expect(result.code).toBe(0);
	});

	it("refuses a broken one, naming the variable and the fault, never the value", async () => {
		const path = settings('CLIENT_LIMITS={"secret-looking-id": {"rpm": "sixty"}}');
		const result = await runCli("check-config", [path]);
		expect(result.code).toBe(1);
		expect(result.stderr).toContain(`${path}: invalid (production)\n  - CLIENT_LIMITS must give rpm as a whole number from 1 to 1000000`);
		expect(result.stderr + result.stdout).not.toContain("sixty");
		expect(result.stderr + result.stdout).not.toContain("secret-looking-id");
	});

	it("production refuses what development only warns of", async () => {
		const line = 'CLIENT_LIMITS={"*": {"rpm": 50000}}';
		const production = await runCli("check-config", [settings(line)]);
		expect(production.code).toBe(1);
		expect(production.stderr).toContain("CLIENT_LIMITS has an rpm over 10000");
		const development = await runCli("check-config", [settings(line, "ENVIRONMENT=development")]);
		expect(development.code).toBe(0);
		expect(development.stdout).toContain("warning: CLIENT_LIMITS has an rpm over 10000 (refused in production)");
	});
});

describe("npm run check-config knows token budgets and BUDGET_FAIL_MODE", () => {
	it("takes a budget, and refuses a hold without one or a bad BUDGET_FAIL_MODE, naming each", async () => {
		const sound = settings('CLIENT_LIMITS={"*": {"daily_tokens": 200000, "monthly_tokens": 5000000, "token_hold": 8192}}');
		const ok = await runCli("check-config", [sound]);
		expect(ok.stdout.trim()).toBe(`${sound}: ok (production)`);
		expect(ok.code).toBe(0);
		const broken = settings('CLIENT_LIMITS={"agent": {"token_hold": 512}}', "BUDGET_FAIL_MODE=open");
		const refused = await runCli("check-config", [broken]);
		expect(refused.stderr).toContain(`${broken}: invalid (production)`);
		expect(refused.stderr).toContain("  - BUDGET_FAIL_MODE must be closed or memory");
		expect(refused.stderr).toContain("  - CLIENT_LIMITS has a token_hold without daily_tokens or monthly_tokens");
		expect(refused.code).toBe(1);
	});

	it("BUDGET_FAIL_MODE=memory is ok with a warning (--strict: not ok); a hold over a million is production's refusal", async () => {
		const memory = settings("BUDGET_FAIL_MODE=memory");
		const warned = await runCli("check-config", [memory]);
		expect(warned.stdout).toContain("warning: BUDGET_FAIL_MODE=memory: while Upstash fails, each isolate keeps token budgets alone");
		expect(warned.code).toBe(0);
		expect((await runCli("check-config", ["--strict", memory])).code).toBe(1);
		const line = 'CLIENT_LIMITS={"agent": {"daily_tokens": 90000000, "token_hold": 2000000}}';
		expect((await runCli("check-config", [settings(line)])).stderr).toContain("CLIENT_LIMITS has a token_hold over 1000000");
		expect((await runCli("check-config", [settings(line, "ENVIRONMENT=development")])).code).toBe(0);
	});
});

describe("the client package", () => {
	it("exports rateLimitInfo() as built for consumers (dist/)", async () => {
		const built = "../../dist/client/index.js";
		const { rateLimitInfo } = (await import(built)) as typeof import("../../src/client/index.ts");
		const answer = { headers: new Headers({ "Retry-After": "7", RateLimit: '"rpm";r=0;t=7' }) };
		expect(rateLimitInfo(answer)).toEqual({ retryAfterMs: 7_000, limits: { rpm: { remaining: 0, resetSeconds: 7 } }, tokensRemaining: null });
		const budget = { headers: new Headers({ "Retry-After": "3600", RateLimit: '"daily_tokens";r=0;t=3600, "monthly_tokens";r=50;t=90000' }) };
		expect(rateLimitInfo(budget).tokensRemaining).toBe(0);
	});
});
