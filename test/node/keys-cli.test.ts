import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDotenv } from "../../scripts/lib/dev-vars.ts";
import { KeyringAdmin } from "../../scripts/lib/keyring-admin.ts";
import { runKeys } from "../../scripts/lib/keyring-cli.ts";
import { ensureDevKeyringKey, prepareDevVars } from "../../scripts/lib/keyring-key.ts";
import { kvObjectFileName } from "../../scripts/lib/keyring-local-files.ts";
import { openLocalNamespace, openMiniflareNamespace, readLocalNamespaceId, wranglerNamespace } from "../../scripts/lib/keyring-namespace.ts";
import { recordKey } from "../../src/keyring/record.ts";
import { decodeKeyringKey, decodeKeyringKeys, generateKeyringKey, importKeyringKey, openRecord, sealRecord } from "../../src/keyring/sealing.ts";
import { LIMIT_FIELDS } from "../../src/limits/config.ts";
import { DAY_MS, nextUtcMidnight } from "../fixtures/instants.ts";
import { runCli, type CliResult } from "./helpers/cli.ts";

/** A first-format record's timestamps: written into the local namespace, so built from now (test/fixtures/instants.ts). */
const FIRST_CREATED = new Date(nextUtcMidnight() - 30 * DAY_MS).toISOString();
const FIRST_UPDATED = new Date(nextUtcMidnight() - 29 * DAY_MS).toISOString();

// `npm run keys` in a folder of its own (a copy of wrangler.toml, its own .wrangler/state). Most
// tests run the command in this process (scripts/lib/keyring-cli.ts, what scripts/keys.ts runs);
// the last describe runs the real `node scripts/keys.ts` for what only a process shows.
const REPO = resolve(import.meta.dirname, "../..");
const KEYRING_KEY = generateKeyringKey();
let folder: string;

/** `npm run keys -- args`, in this process, with KEYRING_KEY set unless `env` says otherwise. */
async function keys(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
	const out: string[] = [];
	const err: string[] = [];
	const code = await runKeys(args, {
		env: { KEYRING_KEY, HMAC_CLIENTS: "", ...env },
		cwd: folder,
		stdout: (text) => out.push(`${text}\n`),
		stderr: (text) => err.push(`${text}\n`),
	});
	return { code, signal: null, stdout: out.join(""), stderr: err.join("") };
}

async function json<T = Record<string, unknown>>(args: string[], env: Record<string, string> = {}): Promise<T> {
	const result = await keys([...args, "--json"], env);
	expect(result.stderr).toBe("");
	expect(result.code).toBe(0);
	return JSON.parse(result.stdout) as T;
}

const state = () => join(folder, ".wrangler/state");
const cryptoKeys = (text = KEYRING_KEY) => Promise.all(decodeKeyringKeys(text)!.map(importKeyringKey));

/** The local namespace of the CLI's folder, opened as the CLI opens it, with an admin holding `keyText`. */
async function withLocal<T>(use: (namespace: Awaited<ReturnType<typeof openLocalNamespace>>, admin: KeyringAdmin) => Promise<T>, keyText = KEYRING_KEY): Promise<T> {
	const namespace = await openLocalNamespace({ persistTo: state(), namespaceId: readLocalNamespaceId(folder) });
	try {
		return await use(namespace, new KeyringAdmin(namespace, await cryptoKeys(keyText)));
	} finally {
		await namespace.close();
	}
}

beforeAll(() => {
	folder = mkdtempSync(join(tmpdir(), "keys-cli-"));
	copyFileSync(join(REPO, "wrangler.toml"), join(folder, "wrangler.toml"));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("npm run keys, against the local namespace", () => {
	it("add prints a fresh 256-bit secret once; show and list never print it; KV holds one sealed value per client", async () => {
		const added = await json<{ id: string; secret: string; effect: string }>(["add", "alice"]);
		expect(added.id).toBe("alice");
		expect(added.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(added.effect).toMatch(/^takes effect at once/);
		const again = await json<{ secret: string }>(["add", "bob"]);
		expect(again.secret).not.toBe(added.secret);

		const shown = await keys(["show", "alice"]);
		expect(shown.stdout).toMatch(/^alice: enabled, 1 secret\(s\), created /);
		expect(shown.stdout).not.toContain(added.secret);
		const listed = await keys(["list"]);
		expect(listed.stdout).not.toContain(added.secret);
		expect(listed.stdout).toContain("2 client(s)");
		const listedJson = await json<{ clients: { id: string; secrets: number }[] }>(["list"]);
		expect(listedJson.clients.map((c) => [c.id, c.secrets])).toEqual([["alice", 1], ["bob", 1]]);
		expect(JSON.stringify(listedJson)).not.toContain(added.secret);
		// KV holds the id and one sealed text: nothing else of the record can be read or changed without the key.
		const [value] = await withLocal((namespace) => namespace.getMany(["client:alice"]));
		const record = JSON.parse(value!) as Record<string, unknown>;
		expect(Object.keys(record)).toEqual(["v", "id", "sealed"]);
		expect(value).not.toContain(added.secret);
		expect((await openRecord(await cryptoKeys(), "alice", String(record.sealed))).content.secrets).toEqual([added.secret]);
	});

	it("the human output of add names the secret once, says it is shown once and when it takes effect", async () => {
		const result = await keys(["add", "carol"]);
		expect(result.code).toBe(0);
		const secret = /^secret: (\S+)$/m.exec(result.stdout)?.[1];
		expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(result.stdout.split(secret!).length).toBe(2);
		expect(result.stdout).toContain("shown once");
		expect(result.stdout).toContain("takes effect at once");
	});

	it("rotate puts a new secret first and keeps the old until revoke --old; a fourth secret is refused", async () => {
		await json(["add", "rot"]);
		const first = await json<{ secret: string }>(["rotate", "rot"]);
		expect((await json<{ secrets: number }>(["show", "rot"])).secrets).toBe(2);
		await json(["rotate", "rot"]);
		const full = await keys(["rotate", "rot"]);
		expect(full.stderr.trim()).toBe("keys rotate: client rot already holds 3 secrets, the most a client has: run revoke rot --old first");
		expect(full.code).toBe(1);
		const dropped = await json<{ id: string; dropped: number; effect: string }>(["revoke", "rot", "--old"]);
		expect([dropped.id, dropped.dropped]).toEqual(["rot", 2]);
		expect(dropped.effect).toMatch(/^takes effect within KEYRING_CACHE_MS/);
		expect((await json<{ secrets: number }>(["show", "rot"])).secrets).toBe(1);
		expect(first.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
	});

	it("disable and enable flip the flag; revoke leaves a tombstone that forget removes; add registers a revoked id anew", async () => {
		await json(["add", "dis"]);
		expect(await json(["disable", "dis"])).toMatchObject({ id: "dis", disabled: true });
		expect((await keys(["show", "dis"])).stdout).toMatch(/^dis: DISABLED/);
		expect(await json(["enable", "dis"])).toMatchObject({ id: "dis", disabled: false });
		const revoked = await keys(["revoke", "dis"]);
		expect(revoked.stdout).toContain("revoked dis: its tombstone refuses it whatever signs it, the shared secret too (forget dis removes the tombstone)");
		expect(await json(["show", "dis"])).toMatchObject({ id: "dis", secrets: 0, revoked: true });
		expect((await keys(["show", "dis"])).stdout).toMatch(/^dis: REVOKED \(a tombstone\), created /);
		for (const [args, line] of [
			[["rotate", "dis"], "keys rotate: client dis is revoked: add dis registers it anew, forget dis removes its tombstone"],
			[["enable", "dis"], "keys enable: client dis is revoked: add dis registers it anew, forget dis removes its tombstone"],
			[["limits", "dis", "{}"], "keys limits: client dis is revoked: add dis registers it anew, forget dis removes its tombstone"],
			[["revoke", "dis"], "keys revoke: client dis is already revoked (forget dis removes its tombstone)"],
			[["forget", "alice"], "keys forget: client alice is not revoked: forget removes only a tombstone (revoke alice first)"],
		] as const) {
			const refused = await keys([...args]);
			expect(refused.stderr.trim()).toBe(line);
			expect(refused.code).toBe(1);
		}
		const forgotten = await keys(["forget", "dis"]);
		expect(forgotten.stdout).toContain("forgot dis: the keyring no longer names it, so HMAC_CLIENTS, then HMAC_SECRET, serve it where they are set");
		const gone = await keys(["show", "dis"]);
		expect(gone.stderr.trim()).toBe("keys show: no client dis in the keyring");
		expect(gone.code).toBe(1);
		expect(await withLocal((namespace) => namespace.list("client:"))).not.toContain("client:dis");
		await json(["revoke", "bob"]);
		const anew = await json<{ secret: string }>(["add", "bob"]);
		expect(await json(["show", "bob"])).toMatchObject({ secrets: 1, revoked: false });
		expect(anew.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
	});

	it("refuses a second client whose id differs only in case, and an id outside the grammar", async () => {
		await json(["add", "Case-Id"]);
		const twin = await keys(["add", "case-id"]);
		expect(twin.stderr.trim()).toBe("keys add: client Case-Id already exists, and ids that differ only in case are one client");
		expect(twin.code).toBe(1);
		expect((await keys(["show", "CASE-ID"])).stderr.trim()).toBe("keys show: no client CASE-ID in the keyring");
		const bad = await keys(["add", "white space"]);
		expect(bad.stderr.trim()).toBe("keys add: a client id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
		expect(bad.code).toBe(1);
		const existing = await keys(["add", "alice"]);
		expect(existing.stderr.trim()).toBe("keys add: client alice already exists (rotate it, change its limits with limits alice, or revoke it first)");
	});

	it("add --limits and limits ID JSON store the limits, checked with CLIENT_LIMITS's own parser; the secrets stay; '{}' removes them", async () => {
		await json(["add", "limited", "--limits", '{"rpm":60,"concurrent":2}']);
		expect((await json<{ limits: unknown }>(["show", "limited"])).limits).toEqual({ rpm: 60, concurrent: 2 });
		const [before] = await withLocal((_, admin) => admin.list().then((l) => l.clients.filter((c) => c.id === "limited")));
		const changed = await json<{ id: string; limits: unknown; effect: string }>(["limits", "limited", '{"rpd":5000}']);
		expect([changed.id, changed.limits]).toEqual(["limited", { rpd: 5000 }]);
		expect(changed.effect).toMatch(/^takes effect within KEYRING_CACHE_MS/);
		const after = await json<{ limits: unknown; secrets: number; createdAt: string }>(["show", "limited"]);
		expect([after.limits, after.secrets, after.createdAt]).toEqual([{ rpd: 5000 }, 1, before!.createdAt]);
		// The same secret opens: limits do not hand out a new one.
		const opened = async () => withLocal(async (namespace) => (await openRecord(await cryptoKeys(), "limited", JSON.parse((await namespace.getMany([recordKey("limited")]))[0]!).sealed)).content.secrets);
		const secrets = await opened();
		expect(await json(["limits", "limited", "{}"])).toMatchObject({ limits: {} });
		expect(await json<Record<string, unknown>>(["show", "limited"])).not.toHaveProperty("limits");
		expect(await opened()).toEqual(secrets);

		for (const [args, line] of [
			[["add", "limited2", "--limits", "[1]"], "keys add: --limits must be a JSON object, e.g. '{\"rpm\":60}'"],
			[["add", "limited3", "--limits", '{"rpm":0}'], "keys add: --limits: must give rpm as a whole number from 1 to 1000000"],
			[["add", "limited5", "--limits", '{"rpm":1,"rpm":100}'], "keys add: --limits: names a field twice"],
			[["add", "limited4", "--limits", '{"rpm":1,"bogus":1}'], "keys add: --limits: has an entry with a field other than rpm, rpd, concurrent, daily_tokens, monthly_tokens, token_hold and label"],
			[["add", "limited5", "--limits", '{"label":true}'], "keys add: --limits: label belongs to CLIENT_LIMITS alone: a record never makes its id a metric label"],
			[["limits", "limited", '{"rpd":-1}'], "keys limits: limits: must give rpd as a whole number from 1 to 1000000000"],
			[["limits", "limited"], "keys limits: limits needs the limits as JSON, e.g. '{\"rpm\":60}' ('{}' removes them)"],
		] as const) {
			const refused = await keys([...args]);
			expect(refused.stderr.split("\n")[0]).toBe(line);
			expect(refused.code).toBe(2);
		}
		// Nothing was stored for a refused add.
		expect((await keys(["show", "limited3"])).code).toBe(1);
		expect((await json<{ limits?: unknown }>(["show", "limited"])).limits).toBeUndefined();
	});

	it("add --limits takes a token budget by the same rules as CLIENT_LIMITS, naming the field it refuses", async () => {
		await json(["add", "budgeted", "--limits", '{"daily_tokens":200000,"token_hold":512}']);
		expect((await json<{ limits: unknown }>(["show", "budgeted"])).limits).toEqual({ daily_tokens: 200000, token_hold: 512 });
		const zero = await keys(["add", "budgeted2", "--limits", '{"monthly_tokens":0}']);
		expect(zero.stderr.split("\n")[0]).toBe("keys add: --limits: must give monthly_tokens as a whole number from 1 to 1000000000000000");
		expect(zero.code).toBe(2);
		const holdAlone = await keys(["add", "budgeted3", "--limits", '{"token_hold":512}']);
		expect(holdAlone.stderr.split("\n")[0]).toBe("keys add: --limits: has a token_hold without daily_tokens or monthly_tokens");
		expect((await keys(["show", "budgeted3"])).code).not.toBe(0);
	});

	it("migrate moves HMAC_CLIENTS in with one command, secrets unchanged, and leaves ids already there", async () => {
		const file = join(folder, "clients.json");
		writeFileSync(file, JSON.stringify({ "mig-a": "secret-a-of-32-characters-long!!", "mig-b": ["new-b-secret", "old-b-secret"], alice: "x" }));
		expect(await json(["migrate", "--file", "clients.json"])).toMatchObject({ added: ["mig-a", "mig-b"], skipped: ["alice"] });
		expect((await json<{ secrets: number }>(["show", "mig-b"])).secrets).toBe(2);
		// The same secrets: the record opens to them.
		const opened = await withLocal(async (namespace) => openRecord(await cryptoKeys(), "mig-b", JSON.parse((await namespace.getMany([recordKey("mig-b")]))[0]!).sealed));
		expect(opened.content.secrets).toEqual(["new-b-secret", "old-b-secret"]);
		// From the environment too.
		expect(await json(["migrate"], { HMAC_CLIENTS: JSON.stringify({ "mig-env": "s" }) })).toMatchObject({ added: ["mig-env"], skipped: [] });
		// What --remote asks of a deployment: no secret under 32 characters, and nothing written then.
		await expect(withLocal((_, admin) => admin.migrate(JSON.stringify({ "mig-long": "l".repeat(32), "mig-short": "s".repeat(31) }), { minSecretLength: 32 }))).rejects.toThrow(
			"HMAC_CLIENTS has a secret shorter than 32 characters, which production refuses: rotate it first",
		);
		expect((await keys(["show", "mig-long"])).code).toBe(1);
		const broken = await keys(["migrate"], { HMAC_CLIENTS: '{"a": ' });
		expect(broken.stderr.trim()).toBe("keys migrate: HMAC_CLIENTS is not valid JSON");
		expect(broken.code).toBe(1);
	});

	it("reads KEYRING_KEY from .dev.vars when the environment has none, and refuses a bad one without quoting it", async () => {
		writeFileSync(join(folder, ".dev.vars"), `ENVIRONMENT=development\nKEYRING_KEY=${KEYRING_KEY}\n`);
		try {
			expect((await json<{ secrets: number }>(["show", "alice"], { KEYRING_KEY: "" })).secrets).toBe(1);
		} finally {
			rmSync(join(folder, ".dev.vars"));
		}
		const missing = await keys(["add", "nokey"], { KEYRING_KEY: "" });
		expect(missing.stderr.trim()).toBe("keys add: KEYRING_KEY is not set (in the environment, or in .dev.vars for the local namespace)");
		expect(missing.code).toBe(1);
		const bad = await keys(["add", "badkey"], { KEYRING_KEY: "c2VjcmV0LXZhbHVl" });
		expect(bad.stderr.trim()).toBe("keys: KEYRING_KEY from the environment must be 32 bytes in base64 (openssl rand -base64 32), or two such keys (new,old) while it is rotated");
		expect(bad.stderr).not.toContain("c2VjcmV0LXZhbHVl");
		expect(bad.code).toBe(1);
		// Under another key, nothing of a record opens: said, never a crash.
		const other = await keys(["show", "alice"], { KEYRING_KEY: generateKeyringKey() });
		expect(other.stdout).toMatch(/^alice: sealed, and it does not open under this KEYRING_KEY/);
		const rotate = await keys(["rotate", "alice"], { KEYRING_KEY: generateKeyringKey() });
		expect(rotate.stderr.trim()).toBe("keys rotate: the record of alice does not open under this KEYRING_KEY (another key, or a record changed without it)");
	});

	it("rekey: with KEYRING_KEY new,old, re-seals every record under the new key, upgrades the first format, and reports what opens under neither", async () => {
		const persistTo = join(folder, "rekey-state");
		const oldText = KEYRING_KEY;
		const newText = generateKeyringKey();
		await json(["add", "rk-a", "--persist-to", persistTo, "--limits", '{"rpm":7}']);
		await json(["add", "rk-b", "--persist-to", persistTo]);
		await json(["disable", "rk-b", "--persist-to", persistTo]);
		// A record of the first format (only its secrets sealed), and one under a key neither holds.
		const namespace = await openLocalNamespace({ persistTo, namespaceId: readLocalNamespaceId(folder) });
		const [oldKey] = await cryptoKeys(oldText);
		const legacySecrets = await sealLegacy(oldKey!, "rk-first", ["first-secret"]);
		await namespace.put(recordKey("rk-first"), JSON.stringify({ v: 1, id: "rk-first", secrets: legacySecrets, limits: { rpd: 9 }, disabled: false, createdAt: FIRST_CREATED, updatedAt: FIRST_UPDATED }));
		const stranger = await importKeyringKey(decodeKeyringKey(generateKeyringKey())!);
		await namespace.put(recordKey("rk-lost"), JSON.stringify({ v: 2, id: "rk-lost", sealed: await sealRecord(stranger, "rk-lost", { secrets: ["s"], disabled: false, revoked: false, createdAt: "t", updatedAt: "t" }) }));
		await namespace.close();

		const both = `${newText},${oldText}`;
		const report = await keys(["rekey", "--persist-to", persistTo, "--json"], { KEYRING_KEY: both });
		expect(JSON.parse(report.stdout)).toMatchObject({ resealed: ["rk-a", "rk-b"], upgraded: ["rk-first"], current: 0, unreadable: ["client:rk-lost"] });
		expect(report.code).toBe(1);
		// Under the new key alone now, everything kept (limits, the flag, the first format's fields and secrets).
		const shown = (id: string) => json<Record<string, unknown>>(["show", id, "--persist-to", persistTo], { KEYRING_KEY: newText });
		expect(await shown("rk-a")).toMatchObject({ secrets: 1, limits: { rpm: 7 }, disabled: false });
		expect(await shown("rk-b")).toMatchObject({ secrets: 1, disabled: true });
		expect(await shown("rk-first")).toMatchObject({ secrets: 1, limits: { rpd: 9 }, createdAt: FIRST_CREATED, updatedAt: FIRST_UPDATED });
		const first = await new KeyringAdmin(await openLocalNamespace({ persistTo, namespaceId: readLocalNamespaceId(folder) }), await cryptoKeys(newText)).show("rk-first");
		expect(first.secrets).toBe(1);
		// Once more: nothing left to do but the stranger.
		expect(JSON.parse((await keys(["rekey", "--persist-to", persistTo, "--json"], { KEYRING_KEY: both })).stdout)).toMatchObject({ resealed: [], upgraded: [], current: 3 });
		const human = await keys(["rekey", "--persist-to", persistTo], { KEYRING_KEY: both });
		expect(human.stdout).toContain("left 1 that open under neither key: client:rk-lost");
		expect(human.stdout).toContain("clients see no change");
		// The gateway's refusal of a first-format record names the way out; list says so too.
		expect((await keys(["list", "--persist-to", persistTo], { KEYRING_KEY: both })).stdout).toContain("rk-lost: sealed, and it does not open under this KEYRING_KEY");
	});

	it("--persist-to selects another local state folder, as wrangler takes it", async () => {
		await json(["add", "elsewhere", "--persist-to", "other-state"]);
		expect((await keys(["show", "elsewhere"])).code).toBe(1);
		expect((await json<{ id: string }>(["show", "elsewhere", "--persist-to", join(folder, "other-state")])).id).toBe("elsewhere");
	});

	it.each([
		[[], "keys: name a command"],
		[["frobnicate"], 'keys: unknown command "frobnicate"'],
		[["add"], "keys add: add needs a client id"],
		[["add", "x", "--bogus"], "keys add: Unknown option '--bogus'"],
		[["list", "extra"], "keys list: Unexpected argument 'extra'"],
		[["show", "x", "--env", "staging"], "keys show: --env goes with --remote (locally, the namespace is wrangler.toml's top-level one)"],
		[["show", "x", "--remote", "--persist-to", "d"], "keys show: --persist-to is for the local namespace, not with --remote"],
		[["list", "--old"], "keys list: Unknown option '--old'"],
		[["rotate", "x", "--limits", "{}"], "keys rotate: Unknown option '--limits'"],
		[["forget"], "keys forget: forget needs a client id"],
	])("%j: one line and the usage, exit 2", async (args, line) => {
		const result = await keys(args);
		expect(result.stderr.split("\n")[0]).toBe(line);
		expect(result.stderr).toMatch(/usage: npm run keys -- /);
		expect(result.stdout).toBe("");
		expect(result.code).toBe(2);
	});

	it("with --json, an error is {\"error\": ...} on stdout too, for a refused operation (1) and a usage error (2)", async () => {
		const refused = await keys(["show", "nobody", "--json"]);
		expect(JSON.parse(refused.stdout)).toEqual({ error: "no client nobody in the keyring" });
		expect(refused.code).toBe(1);
		const usage = await keys(["add", "--json"]);
		expect(JSON.parse(usage.stdout)).toEqual({ error: "add needs a client id" });
		expect(usage.code).toBe(2);
		const badKey = await keys(["list", "--json"], { KEYRING_KEY: "short" });
		expect(JSON.parse(badKey.stdout).error).toMatch(/^KEYRING_KEY from the environment must be 32 bytes/);
	});

	it("--help names every command; COMMAND --help describes it: add and limits the fields of --limits, rotate the three-secret cap", async () => {
		const help = await keys(["--help"]);
		expect(help.code).toBe(0);
		for (const command of ["add", "rotate", "revoke", "forget", "disable", "enable", "limits", "show", "list", "migrate", "rekey"]) expect(help.stdout).toContain(`  ${command} `);
		const add = await keys(["add", "--help"]);
		expect(add.stdout).toMatch(/^usage: npm run keys -- add ID \[--limits JSON\] \[options\]/);
		// The fields come from the gateway's own parser (src/limits/config.ts): a new one shows without a change here.
		for (const field of LIMIT_FIELDS.filter((f) => f !== "label")) expect(add.stdout).toContain(field);
		expect(add.stdout).toMatch(/--limits JSON +the client's limits: one CLIENT_LIMITS entry, any of rpm, rpd, concurrent/);
		expect(add.code).toBe(0);
		expect((await keys(["limits", "--help"])).stdout).toContain("--limits JSON");
		expect((await keys(["rotate", "--help"])).stdout).toContain("at most 3 secrets");
		expect((await keys(["rekey", "--help"])).stdout).toContain("new,old");
	});
});

describe("the namespace: in its files, through Miniflare, through wrangler (what --remote uses)", () => {
	it("finds the namespace's database by workerd's object id, and writes what Miniflare reads", async () => {
		const namespaceId = readLocalNamespaceId(folder);
		expect(statSync(join(state(), "v3/kv/miniflare-KVNamespaceObject", kvObjectFileName(namespaceId))).isFile()).toBe(true);
		const viaMiniflare = await openMiniflareNamespace({ persistTo: state(), namespaceId });
		try {
			expect(JSON.parse((await viaMiniflare.getMany([recordKey("alice")]))[0]!).id).toBe("alice");
			await viaMiniflare.put("client:from-miniflare", "{}");
		} finally {
			await viaMiniflare.close();
		}
		expect(await withLocal((namespace) => namespace.getMany(["client:from-miniflare"]))).toEqual(["{}"]);
		await withLocal((namespace) => namespace.delete("client:from-miniflare"));
	});

	it("wrangler kv --local sees what the CLI wrote, and writes (bulk too), lists and deletes records the CLI reads", async () => {
		const viaWrangler = wranglerNamespace(["--local", "--persist-to", state()], { cwd: folder });
		try {
			const admin = new KeyringAdmin(viaWrangler, await cryptoKeys());
			// migrate reads in bulk (alice, which the CLI wrote, is seen and skipped) and writes in bulk: one wrangler command each; a list beside it.
			const [listed, migrated] = await Promise.all([
				viaWrangler.list("client:"),
				admin.migrate(JSON.stringify({ "remote-a": "remote-a-secret", "remote-b": "remote-b-secret", alice: "x" })),
			]);
			expect(listed).toEqual(expect.arrayContaining(["client:alice", "client:rot", "client:mig-b"]));
			expect(migrated).toEqual({ added: ["remote-a", "remote-b"], skipped: ["alice"] });
			await viaWrangler.delete(recordKey("remote-b"));
		} finally {
			await viaWrangler.close();
		}
		expect(await withLocal(async (_, admin) => (await admin.show("remote-a")).secrets)).toBe(1);
		expect((await keys(["show", "remote-b"])).code).toBe(1);
	});
});

describe("scripts/keys.ts, the process npm run keys starts", () => {
	const spawnKeys = (args: string[], env: Record<string, string> = {}) => runCli("keys", args, { cwd: folder, env: { KEYRING_KEY, HMAC_CLIENTS: "", ...env }, timeoutMs: 60_000 });

	it("exits 0 with its output, 1 with {\"error\"} for a refused operation, 2 with the usage, never a stack trace", async () => {
		const [added, refused, usage] = await Promise.all([
			spawnKeys(["add", "spawned", "--json"]),
			spawnKeys(["show", "nobody", "--json"]),
			spawnKeys(["add", "x", "--bogus"]),
		]);
		expect(JSON.parse(added.stdout)).toMatchObject({ id: "spawned" });
		expect([added.code, added.stderr]).toEqual([0, ""]);
		expect(JSON.parse(refused.stdout)).toEqual({ error: "no client nobody in the keyring" });
		expect(refused.stderr).toBe("keys show: no client nobody in the keyring\n");
		expect(refused.code).toBe(1);
		expect(usage.stderr).toMatch(/^keys add: Unknown option '--bogus'\nusage: npm run keys -- add /);
		expect(usage.code).toBe(2);
		for (const result of [added, refused, usage]) expect(result.stderr).not.toMatch(/^\s+at |ExperimentalWarning/m);
	});
});

describe("npm run dev's .dev.vars", () => {
	it("adds a fresh key once to a .dev.vars without one, keeps the file's lines, and never replaces a key", () => {
		const path = join(folder, "dev-vars-test");
		writeFileSync(path, "ENVIRONMENT=development\nHMAC_SECRET=dev-secret");
		expect(ensureDevKeyringKey(path)).toBe(true);
		const first = readFileSync(path, "utf8");
		const settings = parseDotenv(first);
		expect(settings.get("HMAC_SECRET")).toBe("dev-secret");
		expect(decodeKeyringKey(settings.get("KEYRING_KEY")!)?.byteLength).toBe(32);
		expect(ensureDevKeyringKey(path)).toBe(false);
		expect(readFileSync(path, "utf8")).toBe(first);
		const other = join(folder, "dev-vars-test-2");
		writeFileSync(other, "");
		ensureDevKeyringKey(other);
		expect(parseDotenv(readFileSync(other, "utf8")).get("KEYRING_KEY")).not.toBe(settings.get("KEYRING_KEY"));
	});

	it("is mode 0600 whoever made it: created from the example, given a key, or found 0644", () => {
		const example = join(folder, "example-vars");
		writeFileSync(example, "HMAC_SECRET=dev-secret\n", { mode: 0o644 });
		const created = join(folder, "created-vars");
		expect(prepareDevVars(created, example)).toEqual({ created: true, keyAdded: true });
		expect(statSync(created).mode & 0o777).toBe(0o600);
		const found = join(folder, "found-vars");
		writeFileSync(found, `KEYRING_KEY=${generateKeyringKey()}\n`, { mode: 0o644 });
		expect(prepareDevVars(found, example)).toEqual({ created: false, keyAdded: false });
		expect(statSync(found).mode & 0o777).toBe(0o600);
		const keyless = join(folder, "keyless-vars");
		writeFileSync(keyless, "HMAC_SECRET=x\n", { mode: 0o644 });
		expect(ensureDevKeyringKey(keyless)).toBe(true);
		expect(statSync(keyless).mode & 0o777).toBe(0o600);
	});

	it("the files docs/deploy.md has operators create beside the repository are ignored by git; the repository's own files are not", async () => {
		const { execFileSync } = await import("node:child_process");
		const ignored = (path: string) => {
			try {
				execFileSync("git", ["check-ignore", "-q", "--no-index", path], { cwd: REPO });
				return true;
			} catch {
				return false;
			}
		};
		const deploy = readFileSync(join(REPO, "docs/deploy.md"), "utf8");
		for (const file of ["keyring-key.production", "hmac-clients.production.json", "production.env", ".dev.vars"]) {
			expect(deploy.includes(file) || file === ".dev.vars", file).toBe(true);
			expect(ignored(file), file).toBe(true);
		}
		for (const file of ["keyring-key.staging", "hmac-clients.staging.json", "staging.env"]) expect(ignored(file), file).toBe(true);
		for (const file of ["scripts/lib/keyring-key.ts", ".dev.vars.example", "wrangler.toml"]) expect(ignored(file), file).toBe(false);
	});
});

/** A first-format record's sealed secrets: the JSON list of them, AES-256-GCM under `key` with the id as additional data. */
async function sealLegacy(key: CryptoKey, id: string, secrets: string[]): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(id) }, key, new TextEncoder().encode(JSON.stringify(secrets))));
	return btoa(String.fromCharCode(...iv, ...ct));
}
