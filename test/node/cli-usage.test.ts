import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.ts";

// Every CLI of package.json, as `npm run X -- ...` runs it (bench has tests of its own): its
// file in scripts/ and its npm script.
const CLIS = ["sign", "smoke", "upstash-server", "dev", "demo-origin", "check-config", "build-client", "keys"];
const npmScript = (cli: string) => (cli === "build-client" ? "build:client" : cli);

describe("every CLI's command line", () => {
	it("covers every script of package.json that runs a file of scripts/ (bench aside)", () => {
		const scripts = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts;
		const files = Object.values(scripts).flatMap((command) => [.../node (?:--\S+ )*scripts\/([\w-]+)\.ts/.exec(command)?.slice(1) ?? []]);
		expect(files.filter((file) => file !== "bench").sort()).toEqual([...CLIS].sort());
	});

	it.each(CLIS)("%s --help prints the usage on stdout and exits 0, doing nothing else", async (cli) => {
		// From an empty folder: `dev --help` must not create .dev.vars or start anything.
		const { code, stdout, stderr } = await runCli(cli, ["--help"], { cwd: tmpdir(), timeoutMs: 20_000 });
		expect(stdout).toMatch(new RegExp(`^usage: npm run ${npmScript(cli)} -- `));
		expect(stdout.split("\n").length).toBeGreaterThan(2);
		expect(stderr).toBe("");
		expect(code).toBe(0);
		expect((await runCli(cli, ["-h"], { cwd: tmpdir(), timeoutMs: 20_000 })).stdout).toBe(stdout);
	});

	it.each(CLIS)("%s with an unknown option prints one line and the usage on stderr, exit 2, no stack trace", async (cli) => {
		const { code, stdout, stderr } = await runCli(cli, ["--no-such-option"], { cwd: tmpdir(), timeoutMs: 20_000 });
		const [first, ...rest] = stderr.trimEnd().split("\n");
		expect(first).toBe(`${cli}: Unknown option '--no-such-option'`);
		expect(rest[0]).toMatch(new RegExp(`^usage: npm run ${npmScript(cli)} -- `));
		expect(stderr).not.toMatch(/^\s+at /m);
		expect(stdout).toBe("");
		expect(code).toBe(2);
	});

	it.each([
		["upstash-server", ["--port", "http"], "upstash-server: --port must be a port number (1 to 65535)"],
		["upstash-server", ["--redis-port", "70000"], "upstash-server: --redis-port must be a port number (1 to 65535)"],
		["dev", ["--port", "-1"], "dev: Option '--port' argument is ambiguous"],
		["dev", ["--origin-port", "0"], "dev: --origin-port must be a port number (1 to 65535)"],
		["demo-origin", ["--port", "8788x"], "demo-origin: --port must be a port number (1 to 65535)"],
		["sign", ["--method", "PUT"], "sign: --method must be GET or POST"],
		["sign", ["positional"], "sign: Unexpected argument 'positional'"],
		["smoke", ["--url", "ftp://x"], "smoke: --url must be an http(s) URL"],
		["smoke", ["--url", "http://127.0.0.1:1", "--expect-stub", "maybe"], "smoke: --expect-stub must be refused or allowed"],
	])("%s %j: one line and the usage, exit 2", async (cli, args, line) => {
		const { code, stderr } = await runCli(cli, args, { cwd: tmpdir(), env: { HMAC_SECRET: "s" }, timeoutMs: 20_000 });
		expect(stderr.split("\n")[0]).toBe(line);
		expect(stderr).toContain(`usage: npm run ${cli} -- `);
		expect(code).toBe(2);
	});
});
