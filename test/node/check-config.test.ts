import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const execute = promisify(execFile);
const directory = mkdtempSync(join(tmpdir(), "check-config-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const SECRET = "a-production-secret-of-40-characters-!!!";
/** A KEYRING_KEY (32 bytes of base64): wrangler.toml binds KEYRING, and the binding without the key is a warning. */
const KEYRING_KEY = "a2V5cmluZy1rZXktb2YtdGhpcnR5LXR3by1ieXRlcyE=";
/** Everything production wants, so only what a test adds is reported. */
const COMPLETE = [
	`KEYRING_KEY=${KEYRING_KEY}`,
	"ORIGIN_URL=https://origin.example.com",
	`HMAC_SECRET=${SECRET}`,
	"METRICS_TOKEN=m",
	"ORIGIN_TOKEN=o",
	"UPSTASH_REDIS_REST_URL=https://x.upstash.io",
	"UPSTASH_REDIS_REST_TOKEN=t",
];

function file(contents: string | string[]): string {
	const path = join(directory, `${crypto.randomUUID()}.env`);
	writeFileSync(path, Array.isArray(contents) ? contents.join("\n") : contents);
	return path;
}

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; output: string }> {
	try {
		const { stdout, stderr } = await execute(process.execPath, ["scripts/check-config.ts", ...args]);
		return { code: 0, stdout, stderr, output: stdout + stderr };
	} catch (error) {
		const failed = error as { code: number; stdout: string; stderr: string };
		return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr, output: failed.stdout + failed.stderr };
	}
}

/** The report of one file: its verdict line and the lines listed under it. */
function reportOf(output: string, path: string): string[] {
	const lines = output.split("\n");
	const start = lines.findIndex((line) => line.startsWith(`${path}: `));
	if (start < 0) throw new Error(`no report for ${path} in:\n${output}`);
	const report = [lines[start]!.slice(path.length + 2)];
	for (const line of lines.slice(start + 1)) {
		if (!line.startsWith("  ")) break;
		report.push(line.trim());
	}
	return report;
}

/** Each production refusal (docs/design.md, "Configuration"): the lines that break it, and the problem named. */
const REFUSALS: [string, string[], string][] = [
	["short secret", ["HMAC_SECRET=only-31-characters-long-secret!"], "HMAC_SECRET has a secret shorter than 32 characters"],
	["one-character alias", ["HMAC_SECRET=", "E2E_SESSION_HMAC_SECRET=x"], "E2E_SESSION_HMAC_SECRET has a secret shorter than 32 characters"],
	["short client secret", [`HMAC_CLIENTS={"svc": ["${SECRET}", "tiny-client-secret"]}`], "HMAC_CLIENTS has a secret shorter than 32 characters"],
	["4 rotation secrets", [`HMAC_SECRET=${[1, 2, 3, 4].map((n) => SECRET + n).join(",")}`], "HMAC_SECRET lists more than 3 secrets"],
	["4 client secrets", [`HMAC_CLIENTS={"svc": [${[1, 2, 3, 4].map((n) => `"${SECRET}${n}"`).join(", ")}]}`], "HMAC_CLIENTS lists more than 3 secrets for a client"],
	["plain http Upstash", ["UPSTASH_REDIS_REST_URL=http://x.upstash.io"], "UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback"],
	["plain http origin", ["ORIGIN_URL=http://origin.example.com"], "ORIGIN_URL is plain http on a host that is not loopback"],
	["skew over an hour", ["HMAC_MAX_SKEW_MS=3600001"], "HMAC_MAX_SKEW_MS is over 3600000"],
	["body over 32 MiB", ["MAX_BODY_BYTES=33554433"], "MAX_BODY_BYTES is over 33554432"],
];

describe("npm run check-config", () => {
	it("accepts a complete production file (over the wrangler.toml vars): ok, exit 0", async () => {
		const path = file([...COMPLETE, `HMAC_CLIENTS={"svc": ["${SECRET}", "${SECRET}-old"]}`]);
		const { code, stdout } = await run(path);
		expect(stdout).toBe(`${path}: ok (production)\n`);
		expect(code).toBe(0);
	});

	it("refuses a bad file, naming each variable and fault, never a value: invalid, exit 1", async () => {
		const path = file(["ORIGIN_URL=https://origin.example.com", 'HMAC_CLIENTS={"svc": "super-secret-value', "REDIS_REPLAY_TTL=0", "METRICS_TOKEN=m"]);
		const { code, output } = await run(path);
		expect(reportOf(output, path)).toEqual(["invalid (production)", "- HMAC_CLIENTS is not valid JSON", "- REDIS_REPLAY_TTL must be at least 1"]);
		expect(output).not.toContain("super-secret-value");
		expect(code).toBe(1);
	});

	it("refuses HMAC_CLIENTS ids that differ only in letter case, in every environment, naming no id and no secret", async () => {
		for (const environment of ["production", "development"]) {
			const path = file([...COMPLETE, `ENVIRONMENT=${environment}`, `HMAC_CLIENTS={"Alice": "${SECRET}-A", "alice": "${SECRET}-a"}`]);
			const { code, output } = await run(path);
			expect(reportOf(output, path)).toEqual([`invalid (${environment})`, "- HMAC_CLIENTS names two client ids that differ only in letter case"]);
			expect(output).not.toContain(SECRET);
			expect(code).toBe(1);
		}
	});

	it("a production file without METRICS_TOKEN, ORIGIN_TOKEN or Upstash: ok, with warnings, exit 0; with --strict, exit 1", async () => {
		const path = file(["ORIGIN_URL=https://origin.example.com", `HMAC_SECRET=${SECRET}`, `KEYRING_KEY=${KEYRING_KEY}`]);
		const plain = await run(path);
		expect(reportOf(plain.output, path)).toEqual([
			"ok, with warnings (production)",
			"warning: METRICS_TOKEN is not set: it is required in production, and /metrics answers 500 config_error without it",
			"warning: ORIGIN_TOKEN is not set: the origin cannot tell gateway traffic from direct calls",
			"warning: replay protection uses isolate memory only (no Upstash is configured): a request can be replayed through another isolate",
		]);
		expect(plain.code).toBe(0);
		const strict = await run("--strict", path);
		expect(strict.code).toBe(1);
		expect((await run("--strict", file(COMPLETE))).code).toBe(0);
	});

	it.each(["production", "Production", "prod", "staging"])("ENVIRONMENT=%s refuses each production refusal, naming the variable, never the value", async (environment) => {
		const paths = REFUSALS.map(([, lines]) => file([...COMPLETE, `ENVIRONMENT=${environment}`, ...lines]));
		const { code, output } = await run(...paths);
		REFUSALS.forEach(([, lines, problem], i) => {
			expect(reportOf(output, paths[i]!)).toEqual([`invalid (${environment})`, `- ${problem}`]);
			for (const line of lines) {
				const value = line.slice(line.indexOf("=") + 1);
				if (value.length > 3) expect(output).not.toContain(value);
			}
		});
		expect(code).toBe(1);
	});

	it.each(["development", "test"])("ENVIRONMENT=%s accepts each of them with a warning, exit 0", async (environment) => {
		const paths = REFUSALS.map(([, lines]) => file([...COMPLETE, `ENVIRONMENT=${environment}`, ...lines]));
		const { code, output } = await run(...paths);
		REFUSALS.forEach(([, , problem], i) => {
			expect(reportOf(output, paths[i]!)).toEqual([`ok, with warnings (${environment})`, `warning: ${problem} (refused in production)`]);
		});
		expect(code).toBe(0);
	});

	it("names a duplicate client id in HMAC_CLIENTS, which JSON.parse would hide", async () => {
		const path = file([...COMPLETE, `HMAC_CLIENTS={"svc": "${SECRET}", "svc": "${SECRET}-2"}`]);
		const { code, output } = await run(path);
		expect(reportOf(output, path)).toEqual(["invalid (production)", "- HMAC_CLIENTS names the same client id twice"]);
		expect(code).toBe(1);
	});

	it("--env NAME takes [env.NAME.vars] and not the top-level [vars], as wrangler does", async () => {
		const toml = join(directory, "wrangler.toml");
		writeFileSync(
			toml,
			[
				"[vars]",
				'HMAC_MAX_SKEW_MS = "not a number"',
				'ENVIRONMENT = "production"',
				"[env.staging]",
				'name = "x"',
				"[env.staging.vars]",
				'ENVIRONMENT = "staging"   # production rules, by name',
				"ORIGIN_URL = 'https://staging-origin.example.com'",
				"[[env.staging.durable_objects.bindings]]",
				'name = "METRICS_AGGREGATOR"',
				"[env.empty]",
				'name = "y"',
			].join("\n"),
		);
		// This wrangler.toml binds no KEYRING: no key either.
		const secrets = file(COMPLETE.filter((line) => !line.startsWith("ORIGIN_URL=") && !line.startsWith("KEYRING_KEY=")));
		const staging = await run("--config", toml, "--env", "staging", secrets);
		expect(staging.stdout).toBe(`${secrets}: ok (staging)\n`);
		expect(staging.code).toBe(0);
		const topLevel = await run("--config", toml, secrets);
		expect(reportOf(topLevel.output, secrets)).toEqual(["invalid (production)", "- ORIGIN_URL is required", "- HMAC_MAX_SKEW_MS is not a whole number"]);
		// An environment without vars gets none: the top-level ENVIRONMENT is not inherited either.
		const empty = await run("--config", toml, "--env=empty", file(COMPLETE.filter((line) => !line.startsWith("KEYRING_KEY="))));
		expect(empty.stdout).toContain("ok (production)");
		expect(empty.code).toBe(0);
	});

	it("--env with the repository's wrangler.toml: staging and production are checked with their own vars", async () => {
		const secrets = file(COMPLETE.filter((line) => !line.startsWith("ORIGIN_URL=")));
		// Their ORIGIN_URL is the repository's example, marked "# fill in": a warning until it is set.
		const staging = await run("--env", "staging", secrets);
		expect(reportOf(staging.output, secrets)).toEqual([
			"ok, with warnings (staging)",
			'warning: ORIGIN_URL is still the example value of wrangler.toml\'s [env.staging.vars] (marked "fill in"): set the real one there',
		]);
		expect(staging.code).toBe(0);
		const production = await run("--env", "production", secrets);
		expect(reportOf(production.output, secrets)).toEqual([
			"ok, with warnings (production)",
			'warning: ORIGIN_URL is still the example value of wrangler.toml\'s [env.production.vars] (marked "fill in"): set the real one there',
		]);
		expect((await run("--strict", "--env", "production", secrets)).code).toBe(1);
	});

	it("warns of a var marked \"# fill in\" only while it keeps that value", async () => {
		const toml = join(directory, "fill-in.toml");
		const filled = join(directory, "filled.toml");
		const lines = ["[env.production]", 'name = "x"', "[env.production.vars]", 'ENVIRONMENT = "production"'];
		writeFileSync(toml, [...lines, 'ORIGIN_URL = "https://origin.example.com"   # fill in', 'REPLAY_FAIL_MODE = "closed"   # fill-in mode is not a marker'].join("\n"));
		writeFileSync(filled, [...lines, 'ORIGIN_URL = "https://origin.example.com"   # the backend'].join("\n"));
		const secrets = file(COMPLETE.filter((line) => !line.startsWith("ORIGIN_URL=") && !line.startsWith("KEYRING_KEY=")));
		const marked = await run("--config", toml, "--env", "production", secrets);
		expect(reportOf(marked.output, secrets)).toEqual([
			"ok, with warnings (production)",
			'warning: ORIGIN_URL is still the example value of wrangler.toml\'s [env.production.vars] (marked "fill in"): set the real one there',
		]);
		expect((await run("--config", filled, "--env", "production", secrets)).stdout).toBe(`${secrets}: ok (production)\n`);
		// A file that sets the var itself replaces the example: nothing left to fill in.
		const overriding = file([...COMPLETE.filter((line) => !line.startsWith("KEYRING_KEY=")), "ORIGIN_URL=https://real-origin.example.net"]);
		expect((await run("--config", toml, "--env", "production", overriding)).stdout).toBe(`${overriding}: ok (production)\n`);
	});

	it("--help prints the usage and exits 0", async () => {
		const { code, stdout } = await run("--help");
		expect(stdout).toMatch(/^usage: npm run check-config -- \[--env NAME\]/);
		expect(stdout).toContain("Exit status: 0 when every file is ok or ok with warnings");
		expect(code).toBe(0);
	});

	it.each([
		[["--bogus", "x.env"], "check-config: Unknown option '--bogus'"],
		[[], "check-config: no settings file given"],
		[["--env"], "check-config: Option '--env <value>' argument missing"],
		[["--env=a/b", "x.env"], "check-config: --env takes an environment name"],
		[["--env", "nowhere", "x.env"], "check-config: the wrangler configuration has no [env.nowhere]"],
	])("a usage error %j: one line, the usage, exit 2, no stack trace", async (args, line) => {
		const { code, stderr, stdout } = await run(...args);
		expect(stderr.split("\n")[0]).toBe(line);
		expect(stderr.split("\n")[1]).toMatch(/^usage: /);
		expect(stderr).not.toMatch(/\n\s+at /);
		expect(stdout).toBe("");
		expect(code).toBe(2);
	});

	it("reads each file as wrangler reads .dev.vars (dotenv): quotes removed, a comment is no part of a value", async () => {
		// A secret of 31 characters, then a comment: the old hand-written reader kept the comment
		// and saw a long secret; wrangler hands the Worker the 31 characters.
		const commented = file([...COMPLETE.filter((line) => !line.startsWith("HMAC_SECRET=")), "HMAC_SECRET=only-31-characters-long-secret!   # rotated in November"]);
		expect(reportOf((await run(commented)).output, commented)).toEqual(["invalid (production)", "- HMAC_SECRET has a secret shorter than 32 characters"]);
		// Quoted values: the quotes are not part of them (a quoted JSON object parses).
		const quoted = file([...COMPLETE.filter((line) => !line.startsWith("HMAC_SECRET=")), `HMAC_SECRET="${SECRET}"`, `HMAC_CLIENTS='{"svc": "${SECRET}"}'`, 'ORIGIN_URL="https://origin.example.com"   # the backend']);
		const { code, stdout } = await run(quoted);
		expect(stdout).toBe(`${quoted}: ok (production)\n`);
		expect(code).toBe(0);
	});

	it("a file it cannot read: said plainly, exit 1", async () => {
		const { code, stderr } = await run(join(directory, "missing.env"));
		expect(stderr).toBe(`${join(directory, "missing.env")}: cannot read (ENOENT)\n`);
		expect(code).toBe(1);
	});
});
