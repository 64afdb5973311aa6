import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { startGateway, type RunningGateway } from "../../scripts/lib/gateway-runner.ts";
import { readLocalNamespaceId } from "../../scripts/lib/keyring-namespace.ts";
import { generateKeyringKey } from "../../src/keyring/sealing.ts";
import { signedInit } from "../fixtures/signed.ts";
import { runCli } from "./helpers/cli.ts";

// `npm run keys` against the local namespace while a gateway reads it, as `npm run dev` runs
// it (workerd through Miniflare, the same persistence folder and namespace id as wrangler dev).
const REPO = resolve(import.meta.dirname, "../..");
const KEYRING_KEY = generateKeyringKey();
const CACHE_MS = 1000;
let folder: string;
let origin: DemoOrigin;
let gateway: RunningGateway;

const keys = (args: string[]) =>
	runCli("keys", [...args, "--persist-to", join(folder, "state"), "--json"], { cwd: folder, env: { KEYRING_KEY, HMAC_CLIENTS: "" } });

async function send(clientId: string, secret: string): Promise<number> {
	const { path, init } = await signedInit({ clientId, secret, timestamp: Date.now(), body: JSON.stringify({ messages: [{ role: "user", content: crypto.randomUUID() }] }) }, { clientId, secret, timestamp: Date.now() });
	return (await gateway.fetch(path, init)).status;
}

beforeAll(async () => {
	folder = mkdtempSync(join(tmpdir(), "keyring-gateway-"));
	copyFileSync(join(REPO, "wrangler.toml"), join(folder, "wrangler.toml"));
	origin = await startDemoOrigin();
	gateway = await startGateway(
		{ ORIGIN_URL: origin.url, KEYRING_KEY, KEYRING_CACHE_MS: String(CACHE_MS), HMAC_SECRET: "", METRICS_TOKEN: "keyring-metrics" },
		{ scriptPath: inject("bundlePath"), persistTo: join(folder, "state", "v3"), keyringNamespace: readLocalNamespaceId(folder) },
	);
});
afterAll(async () => {
	await gateway?.close();
	await origin?.close();
	rmSync(folder, { recursive: true, force: true });
});

describe("npm run keys while the gateway runs on the same local namespace", () => {
	it("a client added by the CLI verifies; once revoked, it is refused within the cache period (measured)", async () => {
		const added = await keys(["add", "live-client"]);
		expect(added.code).toBe(0);
		const { secret } = JSON.parse(added.stdout) as { secret: string };
		expect(await send("live-client", secret)).toBe(200);
		expect(await send("live-client", "not-its-secret")).toBe(403);

		const revoked = await keys(["revoke", "live-client"]);
		expect(revoked.code).toBe(0);
		const since = Date.now();
		let refusedAfterMs: number | null = null;
		// Polled for up to 20 cache periods: the figure is reported, not asserted.
		while (Date.now() - since < 20 * CACHE_MS) {
			if ((await send("live-client", secret)) === 403) {
				refusedAfterMs = Date.now() - since;
				break;
			}
			await new Promise((done) => setTimeout(done, 50));
		}
		console.log(`keyring revocation: refused ${refusedAfterMs} ms after npm run keys -- revoke exited (KEYRING_CACHE_MS=${CACHE_MS})`);
		expect(refusedAfterMs).not.toBeNull();
	});

	it("rotate: the new and the old secret verify until revoke --old; then only the new", async () => {
		const { secret: old } = JSON.parse((await keys(["add", "live-rotating"])).stdout) as { secret: string };
		expect(await send("live-rotating", old)).toBe(200);
		const { secret: fresh } = JSON.parse((await keys(["rotate", "live-rotating"])).stdout) as { secret: string };
		await new Promise((done) => setTimeout(done, CACHE_MS + 100));
		expect(await send("live-rotating", fresh)).toBe(200);
		expect(await send("live-rotating", old)).toBe(200);
		expect((await keys(["revoke", "live-rotating", "--old"])).code).toBe(0);
		await new Promise((done) => setTimeout(done, CACHE_MS + 100));
		expect(await send("live-rotating", fresh)).toBe(200);
		expect(await send("live-rotating", old)).toBe(403);
	});

	it("the smoke check passes with a keyring client of its own", async () => {
		const { secret } = JSON.parse((await keys(["add", "smoke-check"])).stdout) as { secret: string };
		const result = await runCli("smoke", ["--url", gateway.url, "--expect-stub", "allowed"], {
			cwd: folder,
			env: { SMOKE_HMAC_SECRET: secret, HMAC_SECRET: "", E2E_SESSION_HMAC_SECRET: "", METRICS_TOKEN: "keyring-metrics" },
		});
		expect(result.stdout).toContain("PASS  a signed request gives 200");
		expect(result.code).toBe(0);
	});
});
