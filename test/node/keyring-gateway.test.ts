import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { startGateway, type RunningGateway } from "../../scripts/lib/gateway-runner.ts";
import { runKeys } from "../../scripts/lib/keyring-cli.ts";
import { openLocalNamespace, readLocalNamespaceId } from "../../scripts/lib/keyring-namespace.ts";
import { recordKey } from "../../src/keyring/record.ts";
import { generateKeyringKey } from "../../src/keyring/sealing.ts";
import { parseExposition } from "../fixtures/exposition.ts";
import { signedInit, signedV2Init } from "../fixtures/signed.ts";
import { runCli } from "./helpers/cli.ts";
import { until } from "./helpers/until.ts";

// `npm run keys` against the local namespace while gateways read it, as `npm run dev` runs it
// (workerd through Miniflare, the same persistence folder and namespace id as wrangler dev).
// One workerd runs every gateway of this file side by side, each a Worker of its own settings:
//   main     KEYRING_KEY, HMAC_SECRET (the shared secret), a 1 s cache;
//   keyless  the KEYRING binding without KEYRING_KEY, HMAC_SECRET;
//   patient  KEYRING_KEY, the longest cache (300 s): what changes at once does not wait for it;
//   rot-old, rot-both, rot-new: KEYRING_KEY old, "new,old" and new, on a namespace of their own
//   (the versions of one deployment while KEYRING_KEY is rotated).
const REPO = resolve(import.meta.dirname, "../..");
const KEYRING_KEY = generateKeyringKey();
const [OLD_KEY, NEW_KEY] = [generateKeyringKey(), generateKeyringKey()];
const SHARED = "the-shared-secret-of-at-least-32-chars";
const CACHE_MS = 400;
const METRICS_TOKEN = "keyring-metrics";
const WORKERS = ["main", "keyless", "patient", "rot-old", "rot-both", "rot-new"] as const;
type WorkerName = (typeof WORKERS)[number];
let folder: string;
let rotationFolder: string;
let origin: DemoOrigin;
let gateway: RunningGateway;

/**
 * `npm run keys -- args --json` in `cwd` (its wrangler.toml names the namespace) on the gateways'
 * state folder, run in this process; its JSON answer.
 */
async function keys(args: string[], options: { cwd?: string; keyringKey?: string } = {}): Promise<Record<string, unknown>> {
	const out: string[] = [];
	const err: string[] = [];
	const cwd = options.cwd ?? folder;
	const code = await runKeys([...args, "--persist-to", join(folder, "state"), "--json"], {
		env: { KEYRING_KEY: options.keyringKey ?? KEYRING_KEY, HMAC_CLIENTS: "" },
		cwd,
		stdout: (text) => out.push(text),
		stderr: (text) => err.push(text),
	});
	expect(err.join("\n"), `keys ${args.join(" ")}`).toBe("");
	expect(code).toBe(0);
	return JSON.parse(out.join("")) as Record<string, unknown>;
}

/** The raw KV value of `id` in the main namespace, as anyone who can write it (and holds no key) sees it. */
async function editRaw(id: string, edit: (value: Record<string, unknown>) => Record<string, unknown>, under = id): Promise<void> {
	const namespace = await openLocalNamespace({ persistTo: join(folder, "state"), namespaceId: readLocalNamespaceId(folder) });
	try {
		const [value] = await namespace.getMany([recordKey(id)]);
		await namespace.put(recordKey(under), JSON.stringify(edit(JSON.parse(value!) as Record<string, unknown>)));
	} finally {
		await namespace.close();
	}
}

async function request(worker: WorkerName, clientId: string, secret: string, scheme: "v1" | "v2" = "v1"): Promise<Response> {
	const content = crypto.randomUUID();
	if (scheme === "v2") {
		const { target, init } = await signedV2Init({ body: JSON.stringify({ messages: [{ role: "user", content }] }) }, { clientId, secret, created: Math.floor(Date.now() / 1000), nonce: `n-${content}` });
		return gateway.fetch(target, init, WORKERS.indexOf(worker));
	}
	const { path, init } = await signedInit({ clientId, secret, timestamp: Date.now(), body: JSON.stringify({ messages: [{ role: "user", content }] }) }, { clientId, secret, timestamp: Date.now() });
	return gateway.fetch(path, init, WORKERS.indexOf(worker));
}

async function send(worker: WorkerName, clientId: string, secret: string, scheme: "v1" | "v2" = "v1"): Promise<number> {
	const response = await request(worker, clientId, secret, scheme);
	await response.arrayBuffer();
	return response.status;
}

/** `agent_keyring_lookups_total{result}` summed over the gateways (they share one metrics object). */
async function lookups(result: string): Promise<number> {
	const response = await gateway.fetch("/metrics", { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
	const family = parseExposition(await response.text()).get("agent_keyring_lookups_total");
	return (family?.samples ?? []).filter((s) => s.labels.result === result).reduce((sum, s) => sum + s.value, 0);
}

beforeAll(async () => {
	folder = mkdtempSync(join(tmpdir(), "keyring-gateway-"));
	rotationFolder = join(folder, "rotation");
	copyFileSync(join(REPO, "wrangler.toml"), join(folder, "wrangler.toml"));
	// The rotation's gateways read a namespace of their own: a wrangler.toml that names another id.
	const rotationNamespace = "feedfacefeedfacefeedfacefeedface";
	const toml = readFileSync(join(REPO, "wrangler.toml"), "utf8").replace(`id = "${readLocalNamespaceId(REPO)}"`, `id = "${rotationNamespace}"`);
	mkdirSync(rotationFolder);
	writeFileSync(join(rotationFolder, "wrangler.toml"), toml);
	expect(readLocalNamespaceId(rotationFolder)).toBe(rotationNamespace);
	origin = await startDemoOrigin();
	const common = { ORIGIN_URL: origin.url, KEYRING_CACHE_MS: String(CACHE_MS), HMAC_SECRET: SHARED, METRICS_TOKEN };
	const rotation = (key: string) => ({ bindings: { KEYRING_KEY: key, HMAC_SECRET: "" }, keyringNamespace: rotationNamespace });
	gateway = await startGateway(common, {
		scriptPath: inject("bundlePath"),
		persistTo: join(folder, "state", "v3"),
		keyringNamespace: readLocalNamespaceId(folder),
		workers: [
			{ bindings: { KEYRING_KEY } },
			{ bindings: { KEYRING_KEY: "" } },
			{ bindings: { KEYRING_KEY, KEYRING_CACHE_MS: "300000" } },
			rotation(OLD_KEY),
			rotation(`${NEW_KEY},${OLD_KEY}`),
			rotation(NEW_KEY),
		],
	});
	// A first read makes workerd create each namespace's files: the CLI then writes them without starting a workerd of its own.
	expect(await send("main", "warm-up", SHARED)).toBe(200);
	expect(await send("rot-old", "warm-up", SHARED)).toBe(403);
});
afterAll(async () => {
	await gateway?.close();
	await origin?.close();
	rmSync(folder, { recursive: true, force: true });
});

describe("npm run keys while the gateway runs on the same local namespace", () => {
	it("a client added by the CLI verifies; once revoked, it is refused within the cache period (measured), and stays refused with the shared secret", async () => {
		const { secret } = (await keys(["add", "live-client"])) as { secret: string };
		expect(await send("main", "live-client", secret)).toBe(200);
		expect(await send("main", "live-client", "not-its-secret")).toBe(403);

		await keys(["revoke", "live-client"]);
		const since = Date.now();
		await until(async () => (await send("main", "live-client", secret)) === 403, "the revoked secret refused", 20 * CACHE_MS);
		console.log(`keyring revocation: refused ${Date.now() - since} ms after npm run keys -- revoke returned (KEYRING_CACHE_MS=${CACHE_MS})`);
		// The tombstone: refused whatever signs it, the shared secret too, in both schemes, cache period after cache period.
		expect(await send("main", "live-client", SHARED)).toBe(403);
		const reads = await lookups("kv_read");
		await until(async () => (await send("main", "live-client", SHARED)) === 403 && (await lookups("kv_read")) > reads, "another read of the id", 20 * CACHE_MS);
		expect(await send("main", "live-client", SHARED)).toBe(403);
		expect(await send("main", "live-client", SHARED, "v2")).toBe(403);

		// forget: the id is one the keyring does not name again, and the shared secret serves it at once.
		expect((await keys(["forget", "live-client"])).forgotten).toBe(true);
		await until(async () => (await send("main", "live-client", SHARED)) === 200, "the shared secret serving the forgotten id", 3 * CACHE_MS);
	});

	it("rotate: the new secret verifies at once, the old until revoke --old; then only the new", async () => {
		const { secret: old } = (await keys(["add", "live-rotating"])) as { secret: string };
		expect(await send("patient", "live-rotating", old)).toBe(200);
		expect(await send("main", "live-rotating", old)).toBe(200);
		const { secret: fresh } = (await keys(["rotate", "live-rotating"])) as { secret: string };
		// The patient gateway caches for 300 s: a failed signature reads the record again (once a second).
		const since = Date.now();
		await until(async () => (await send("patient", "live-rotating", fresh)) === 200, "the new secret on the gateway that caches for 300 s", 10_000);
		console.log(`keyring rotation: the new secret verified ${Date.now() - since} ms after npm run keys -- rotate returned (KEYRING_CACHE_MS=300000)`);
		expect(await send("patient", "live-rotating", old)).toBe(200);
		expect(await send("main", "live-rotating", fresh)).toBe(200);
		await keys(["revoke", "live-rotating", "--old"]);
		await until(async () => (await send("main", "live-rotating", old)) === 403, "the old secret refused", 20 * CACHE_MS);
		expect(await send("main", "live-rotating", fresh)).toBe(200);
		// A client added after its id was tried (a cached miss) works at once too.
		expect(await send("patient", "added-later", "any-secret")).toBe(403);
		const { secret: added } = (await keys(["add", "added-later"])) as { secret: string };
		await until(async () => (await send("patient", "added-later", added)) === 200, "an added client on the gateway that cached its miss for 300 s", 10_000);
	});

	it("a record edited in KV without the key (disabled undone, limits removed) or moved to another id is refused, never served by the shared secret", async () => {
		const { secret: offSecret } = (await keys(["add", "edited-off"])) as { secret: string };
		await keys(["disable", "edited-off"]);
		const { secret: limitedSecret } = (await keys(["add", "edited-limits", "--limits", '{"rpm":2}'])) as { secret: string };
		await until(async () => (await send("main", "edited-off", offSecret)) === 403, "the disabled client refused", 20 * CACHE_MS);
		expect(await send("main", "edited-limits", limitedSecret)).toBe(200);

		await editRaw("edited-off", (value) => ({ ...value, disabled: false }));
		await editRaw("edited-limits", (value) => ({ ...value, limits: {} }));
		await editRaw("edited-limits", (value) => ({ ...value, id: "edited-moved" }), "edited-moved");
		// Each edited record read again (the gateway logs its refusal), while every answer is 403.
		const refusedLogged = (id: string) => gateway.logs.some((line) => line.message.includes("keyring record refused") && line.message.includes(id));
		const statuses: number[] = [];
		await until(async () => {
			statuses.push(await send("main", "edited-off", offSecret), await send("main", "edited-moved", limitedSecret));
			const limited = await send("main", "edited-limits", limitedSecret);
			return limited === 403 && refusedLogged("edited-off") && refusedLogged("edited-moved");
		}, "the edited records read again", 20 * CACHE_MS);
		expect(new Set(statuses)).toEqual(new Set([403]));
		expect(await lookups("undecryptable")).toBeGreaterThanOrEqual(3);
		for (const id of ["edited-off", "edited-limits", "edited-moved"]) {
			expect(await send("main", id, SHARED), `${id}, shared secret`).toBe(403);
		}
		// Five at once against a client whose rpm was 2: none gets through.
		statuses.push(...(await Promise.all(Array.from({ length: 5 }, () => send("main", "edited-limits", limitedSecret)))));
		expect(statuses.slice(-5)).toEqual([403, 403, 403, 403, 403]);
	});

	it("limits ID JSON changes a client's limits without a new secret, within the cache period; '{}' removes them", async () => {
		const { secret } = (await keys(["add", "live-limits"])) as { secret: string };
		for (let i = 0; i < 3; i++) expect(await send("main", "live-limits", secret)).toBe(200);
		expect(await keys(["limits", "live-limits", '{"rpm":2}'])).toMatchObject({ limits: { rpm: 2 } });
		let policy: string | null = null;
		await until(async () => {
			policy = (await request("main", "live-limits", secret)).headers.get("ratelimit-policy");
			return policy !== null;
		}, "the new limits applied", 20 * CACHE_MS);
		expect(policy).toBe('"rpm";q=2;w=60');
		const burst = await Promise.all(Array.from({ length: 4 }, () => send("main", "live-limits", secret)));
		expect(burst.filter((status) => status === 429).length).toBeGreaterThanOrEqual(3);
		await keys(["limits", "live-limits", "{}"]);
		await until(async () => (await send("main", "live-limits", secret)) === 200, "the limits removed", 20 * CACHE_MS);
	});

	it("with the KEYRING binding and no KEYRING_KEY, an id that has a record is 503 keyring_unavailable (logged), never served by the shared secret", async () => {
		const { secret } = (await keys(["add", "keyless-client"])) as { secret: string };
		await keys(["add", "keyless-off"]);
		await keys(["disable", "keyless-off"]);
		for (const [id, signedWith, scheme] of [["keyless-client", SHARED, "v1"], ["keyless-client", SHARED, "v2"], ["keyless-client", secret, "v1"], ["keyless-off", SHARED, "v1"]] as const) {
			const response = await request("keyless", id, signedWith, scheme);
			expect(response.status, `${id} ${scheme}`).toBe(503);
			expect(((await response.json()) as { code: string }).code).toBe("keyring_unavailable");
		}
		// An id the keyring does not name is the shared secret's, as before.
		expect(await send("keyless", "keyless-unregistered", SHARED)).toBe(200);
		expect(gateway.logs.some((line) => line.level === "error" && line.message.includes("KEYRING_KEY is not"))).toBe(true);
	});

	it("the smoke check passes with a keyring client of its own", async () => {
		const { secret } = (await keys(["add", "smoke-check"])) as { secret: string };
		const result = await runCli("smoke", ["--url", gateway.url, "--expect-stub", "allowed"], {
			cwd: folder,
			env: { SMOKE_HMAC_SECRET: secret, HMAC_SECRET: "", E2E_SESSION_HMAC_SECRET: "", METRICS_TOKEN },
		});
		expect(result.stdout).toContain("PASS  a signed request gives 200");
		expect(result.code).toBe(0);
	});
});

describe("rotating KEYRING_KEY with a running gateway (docs/deploy.md): no good client refused at any step", () => {
	it("old key; then new,old; keys rekey; then the new key alone: every request of two clients 200; a record written back from before is refused after", async () => {
		const clients = [] as { id: string; secret: string }[];
		for (const id of ["rot-a", "rot-b"]) clients.push({ id, secret: ((await keys(["add", id], { cwd: rotationFolder, keyringKey: OLD_KEY })) as { secret: string }).secret });
		const { secret: before } = (await keys(["add", "rot-rolled"], { cwd: rotationFolder, keyringKey: OLD_KEY })) as { secret: string };
		const { secret: probe } = (await keys(["add", "rot-probe"], { cwd: rotationFolder, keyringKey: OLD_KEY })) as { secret: string };
		const namespace = await openLocalNamespace({ persistTo: join(folder, "state"), namespaceId: readLocalNamespaceId(rotationFolder) });
		const [sealedBefore] = await namespace.getMany([recordKey("rot-rolled")]);
		expect(sealedBefore).not.toBeNull();
		await namespace.close();

		// The deployment's live versions; a client keeps sending to them, in turn, throughout.
		let live: WorkerName[] = ["rot-old"];
		const seen: { worker: WorkerName; status: number }[] = [];
		let running = true;
		const traffic = (async () => {
			for (let i = 0; running; i++) {
				const worker = live[i % live.length]!;
				const { id, secret } = clients[i % clients.length]!;
				seen.push({ worker, status: await send(worker, id, secret) });
			}
		})();
		// Each step lasts until every live version has served four requests since it began.
		const deploy = async (versions: WorkerName[]) => {
			live = versions;
			const start = seen.length;
			await until(() => versions.every((worker) => seen.slice(start).filter((s) => s.worker === worker).length >= 4), `traffic through ${versions.join(", ")}`, 10_000);
		};
		try {
			await deploy(["rot-old"]);
			// 1. KEYRING_KEY=new,old deployed (old and new versions side by side while it rolls out).
			await deploy(["rot-old", "rot-both"]);
			await deploy(["rot-both"]);
			// A version with the new key alone would refuse these clients now: why rekey comes first.
			expect(await send("rot-new", "rot-probe", probe)).toBe(403);
			// 2. keys rekey, with new,old.
			expect(await keys(["rekey"], { cwd: rotationFolder, keyringKey: `${NEW_KEY},${OLD_KEY}` })).toMatchObject({ resealed: ["rot-a", "rot-b", "rot-probe", "rot-rolled"], unreadable: [] });
			await deploy(["rot-both"]);
			// 3. KEYRING_KEY=new deployed.
			await deploy(["rot-both", "rot-new"]);
			await deploy(["rot-new"]);
		} finally {
			running = false;
			await traffic;
		}
		expect(seen.map((s, i) => ({ ...s, i })).filter((s) => s.status !== 200)).toEqual([]);
		expect(seen.length).toBeGreaterThanOrEqual(24);
		expect(await send("rot-new", "rot-rolled", before)).toBe(200);
		// A record written back from before the rotation (sealed under the removed key) no longer opens.
		const writeBack = await openLocalNamespace({ persistTo: join(folder, "state"), namespaceId: readLocalNamespaceId(rotationFolder) });
		await writeBack.put(recordKey("rot-rolled"), sealedBefore!);
		await writeBack.close();
		await until(async () => (await send("rot-new", "rot-rolled", before)) === 403, "the written-back record refused", 20 * CACHE_MS);
	});
});
