import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { freePort, portOpen } from "../../scripts/lib/processes.ts";
import { runCli, startCli } from "./helpers/cli.ts";
import { available } from "./helpers/services.ts";

/** A port some other program holds, for the tests of a busy port. */
let busy: net.Server;
let busyPort: number;
beforeAll(async () => {
	busy = net.createServer();
	await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
	busyPort = (busy.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

/** Whether the port stays closed (a redis-server that outlived its CLI would keep it open). */
async function closedSoon(port: number): Promise<boolean> {
	for (let i = 0; i < 40; i++) {
		if (!(await portOpen(port))) return true;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	return false;
}

describe("busy ports: one clear line naming the option that changes the port", () => {
	it("dev", async () => {
		const { code, stdout, stderr } = await runCli("dev", ["--port", String(busyPort)], { cwd: tmpdir() });
		expect(stderr).toBe(`dev: port ${busyPort} on 127.0.0.1 is already in use (another npm run dev?); choose another with --port N\n`);
		expect(stdout).toBe("");
		expect(code).toBe(1);
	});

	it("demo-origin", async () => {
		const { code, stderr } = await runCli("demo-origin", ["--port", String(busyPort)]);
		expect(stderr).toBe(`demo-origin: port ${busyPort} on 127.0.0.1 is already in use; choose another with --port N\n`);
		expect(code).toBe(1);
	});
});

describe("upstash-server and its redis-server", () => {
	it("--redis-port with nothing listening fails at start, saying so", async () => {
		const port = await freePort();
		const { code, stdout, stderr } = await runCli("upstash-server", ["--redis-port", String(port), "--port", "0"]);
		expect(stderr).toBe(`upstash-server: nothing listens on 127.0.0.1:${port} (--redis-port): start redis-server there, or use --spawn-redis\n`);
		expect(stdout).toBe("");
		expect(code).toBe(1);
	});

	describe.skipIf(!available("redis-server", "redis-server"))("with --spawn-redis", () => {
		it("on a busy port: one line, and the spawned redis-server is gone", async () => {
			const { code, stdout, stderr } = await runCli("upstash-server", ["--spawn-redis", "--port", String(busyPort)]);
			expect(stderr).toBe(`upstash-server: port ${busyPort} on 127.0.0.1 is already in use; choose another with --port N\n`);
			expect(code).toBe(1);
			const redisPort = Number(/spawned redis-server on port (\d+)/.exec(stdout)?.[1]);
			expect(redisPort).toBeGreaterThan(0);
			expect(await closedSoon(redisPort)).toBe(true);
		});

		it("--redis-port N chooses the spawned redis-server's port; a busy one is one line, nothing spawned", async () => {
			const chosen = await freePort();
			const cli = startCli("upstash-server", ["--spawn-redis", "--redis-port", String(chosen), "--port", "0"]);
			expect((await cli.waitFor(/spawned redis-server on port (\d+)/))[1]).toBe(String(chosen));
			expect(await portOpen(chosen)).toBe(true);
			cli.child.kill("SIGINT");
			expect((await cli.exited).code).toBe(0);
			expect(await closedSoon(chosen)).toBe(true);

			const { code, stdout, stderr } = await runCli("upstash-server", ["--spawn-redis", "--redis-port", String(busyPort), "--port", "0"]);
			expect(stderr).toBe(`upstash-server: port ${busyPort} on 127.0.0.1 is already in use; choose another with --redis-port N\n`);
			expect(stdout).toBe("");
			expect(code).toBe(1);
		});

		it.each(["SIGINT", "SIGTERM"] as const)("on %s: stops serving, and the spawned redis-server stops with it", async (signal) => {
			const cli = startCli("upstash-server", ["--spawn-redis", "--port", "0"]);
			const [, redisPort] = await cli.waitFor(/spawned redis-server on port (\d+)/);
			const [, url] = await cli.waitFor(/UPSTASH_REDIS_REST_URL=(\S+)/);
			// It serves: a PING through the REST protocol reaches the spawned redis-server.
			const ping = await fetch(url!, { method: "POST", headers: { Authorization: "Bearer local-dev-token" }, body: JSON.stringify(["PING"]) });
			expect(await ping.json()).toEqual({ result: "PONG" });
			expect(await portOpen(Number(redisPort))).toBe(true);
			cli.child.kill(signal);
			const result = await cli.exited;
			expect(result.code).toBe(0);
			expect(result.stderr).toBe("");
			expect(await closedSoon(Number(redisPort))).toBe(true);
		});
	});
});

describe("npm run dev -- --origin-port N, from a .dev.vars as the example writes it", () => {
	// A folder of its own (the repository's files linked in), so a developer's .dev.vars and
	// .wrangler state are neither read nor touched.
	const repository = resolve(import.meta.dirname, "../..");
	const folder = mkdtempSync(join(tmpdir(), "dev-cli-"));
	for (const name of ["wrangler.toml", "package.json", "tsconfig.json", "src", "node_modules"]) symlinkSync(join(repository, name), join(folder, name));
	const secret = "a quoted secret # not a comment";
	writeFileSync(
		join(folder, ".dev.vars"),
		["ENVIRONMENT=development", "ORIGIN_URL=http://127.0.0.1:8788", `HMAC_SECRET="${secret}"   # quoted, as dotenv allows`, ""].join("\n"),
	);
	const env = { PATH: `${join(repository, "node_modules/.bin")}:${process.env.PATH ?? ""}`, HMAC_SECRET: "" };
	let dev: ReturnType<typeof startCli> | undefined;
	afterAll(async () => {
		if (dev !== undefined && dev.child.exitCode === null) {
			dev.child.kill("SIGINT");
			await dev.exited;
		}
		rmSync(folder, { recursive: true, force: true });
	});

	it("forwards to the demo origin on N (ORIGIN_URL follows it), and the signer reads the quoted secret as wrangler does", async () => {
		const [port, originPort] = [await freePort(), await freePort()];
		// Where .dev.vars points: a gateway still forwarding there gets this 500, not the demo's 200
		// (when another program holds 8788 already, it answers instead, and is not the demo origin on N).
		const stale = net.createServer((socket) => socket.end("HTTP/1.1 500 Stale\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"));
		await new Promise<void>((done) => stale.once("error", () => done()).listen(8788, "127.0.0.1", done));
		onTestFinished(() => void stale.close());
		dev = startCli("dev", ["--port", String(port), "--origin-port", String(originPort)], { cwd: folder, env });
		await dev.waitFor(new RegExp(`the gateway forwards to http://127\\.0\\.0\\.1:${originPort} \\(ORIGIN_URL overridden for this run\\)`));
		await dev.waitFor(/Ready on http:\/\/127\.0\.0\.1:\d+/);
		// The signer in the same folder: the secret from .dev.vars, without its quotes or the comment.
		const sent = await runCli("sign", ["--send", "--url", `http://127.0.0.1:${port}`], { cwd: folder, env });
		expect(sent.stderr).toContain("sign: using HMAC_SECRET in .dev.vars");
		expect(sent.stdout).toMatch(/^HTTP 200/);
		expect(sent.stdout).toContain("Demo answer to: Hello from the signing CLI");
		// Signed with the quotes kept, the gateway (given the value by wrangler) refuses it.
		const quoted = await runCli("sign", ["--send", "--url", `http://127.0.0.1:${port}`], { cwd: folder, env: { ...env, HMAC_SECRET: `"${secret}"` } });
		expect(quoted.stdout).toMatch(/^HTTP 403/);
		dev.child.kill("SIGINT");
		expect((await dev.exited).code).toBe(0);
		expect(await portOpen(originPort)).toBe(false);
	});
});
