import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDotenv } from "../../scripts/lib/dev-vars.ts";
import { KeyringAdmin } from "../../scripts/lib/keyring-admin.ts";
import { ensureDevKeyringKey } from "../../scripts/lib/keyring-key.ts";
import { openLocalNamespace, readLocalNamespaceId, wranglerBinPath, wranglerNamespace } from "../../scripts/lib/keyring-namespace.ts";
import { decodeKeyringKey, generateKeyringKey } from "../../src/keyring/sealing.ts";
import { runCli, type CliResult } from "./helpers/cli.ts";

const REPO = resolve(import.meta.dirname, "../..");
const KEYRING_KEY = generateKeyringKey();
let folder: string;

/** `npm run keys -- args` in a folder of its own (a copy of wrangler.toml, its own .wrangler/state). */
function keys(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
	return runCli("keys", args, { cwd: folder, env: { KEYRING_KEY, HMAC_CLIENTS: "", ...env }, timeoutMs: 60_000 });
}

async function json<T = Record<string, unknown>>(args: string[], env: Record<string, string> = {}): Promise<T> {
	const result = await keys([...args, "--json"], env);
	expect(result.stderr).toBe("");
	expect(result.code).toBe(0);
	return JSON.parse(result.stdout) as T;
}

/** What `wrangler kv key list --local` sees in the CLI's folder: the namespace npm run dev reads. */
function wranglerList(): Promise<string[]> {
	const bin = wranglerBinPath();
	return new Promise((done, fail) =>
		execFile(process.execPath, [bin, "kv", "key", "list", "--binding", "KEYRING", "--local"], { cwd: folder, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } }, (error, stdout) =>
			error === null ? done((JSON.parse(stdout) as { name: string }[]).map((k) => k.name)) : fail(error),
		),
	);
}

beforeAll(() => {
	folder = mkdtempSync(join(tmpdir(), "keys-cli-"));
	copyFileSync(join(REPO, "wrangler.toml"), join(folder, "wrangler.toml"));
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("npm run keys, against the local namespace", () => {
	it("add prints a fresh 256-bit secret once; show and list never print it; wrangler sees the record where npm run dev reads", async () => {
		const added = await json<{ id: string; secret: string }>(["add", "alice"]);
		expect(added.id).toBe("alice");
		expect(added.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
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
		expect(await wranglerList()).toEqual(["client:alice", "client:bob"]);
		// KV holds ciphertext only.
		const [value] = await withLocal((admin) => admin.getMany(["client:alice"]));
		expect(value).not.toContain(added.secret);
	});

	it("the human output of add names the secret once and says it is shown once", async () => {
		const result = await keys(["add", "carol"]);
		expect(result.code).toBe(0);
		const secret = /^secret: (\S+)$/m.exec(result.stdout)?.[1];
		expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
		expect(result.stdout.split(secret!).length).toBe(2);
		expect(result.stdout).toContain("shown once");
	});

	it("rotate puts a new secret first and keeps the old until revoke --old; a fourth secret is refused", async () => {
		await json(["add", "rot"]);
		const first = await json<{ secret: string }>(["rotate", "rot"]);
		expect((await json<{ secrets: number }>(["show", "rot"])).secrets).toBe(2);
		await json(["rotate", "rot"]);
		const full = await keys(["rotate", "rot"]);
		expect(full.stderr.trim()).toBe("keys rotate: client rot already holds 3 secrets: run revoke rot --old first");
		expect(full.code).toBe(1);
		expect(await json(["revoke", "rot", "--old"])).toEqual({ id: "rot", dropped: 2 });
		expect((await json<{ secrets: number }>(["show", "rot"])).secrets).toBe(1);
		expect(first.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
	});

	it("disable and enable flip the flag; revoke removes the client", async () => {
		await json(["add", "dis"]);
		expect(await json(["disable", "dis"])).toEqual({ id: "dis", disabled: true });
		expect((await keys(["show", "dis"])).stdout).toMatch(/^dis: DISABLED/);
		expect(await json(["enable", "dis"])).toEqual({ id: "dis", disabled: false });
		expect(await json(["revoke", "dis"])).toEqual({ id: "dis", revoked: true });
		const gone = await keys(["show", "dis"]);
		expect(gone.stderr.trim()).toBe("keys show: no client dis in the keyring");
		expect(gone.code).toBe(1);
		expect(await wranglerList()).not.toContain("client:dis");
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
	});

	it("add --limits stores the limits as given, shown by show", async () => {
		await json(["add", "limited", "--limits", '{"rpm":60,"concurrent":2}']);
		expect((await json<{ limits: unknown }>(["show", "limited"])).limits).toEqual({ rpm: 60, concurrent: 2 });
		const bad = await keys(["add", "limited2", "--limits", "[1]"]);
		expect(bad.stderr.split("\n")[0]).toBe("keys add: --limits must be a JSON object, e.g. '{\"rpm\":60}'");
		expect(bad.code).toBe(2);
		// CLIENT_LIMITS's rules: what the gateway would ignore is refused here, and nothing is stored.
		const nonsense = await keys(["add", "limited3", "--limits", '{"rpm":0}']);
		expect(nonsense.stderr.split("\n")[0]).toBe("keys add: --limits: must give rpm as a whole number from 1 to 1000000");
		expect(nonsense.code).toBe(2);
		expect((await keys(["show", "limited3"])).code).not.toBe(0);
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
		expect(await json(["migrate", "--file", file])).toEqual({ added: ["mig-a", "mig-b"], skipped: ["alice"] });
		expect((await json<{ secrets: number }>(["show", "mig-b"])).secrets).toBe(2);
		// The same secrets: the record opens to them.
		const opened = await withLocal(async (_, admin) => admin.rotate("mig-a"));
		expect(opened).toMatch(/^[A-Za-z0-9_-]{43}$/);
		// From the environment too.
		expect(await json(["migrate"], { HMAC_CLIENTS: JSON.stringify({ "mig-env": "s" }) })).toEqual({ added: ["mig-env"], skipped: [] });
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
		expect(bad.stderr.trim()).toBe("keys: KEYRING_KEY from the environment must be 32 bytes in base64 (openssl rand -base64 32)");
		expect(bad.code).toBe(1);
		// Under another key, the secrets do not open: said, never a crash.
		const other = await keys(["show", "alice"], { KEYRING_KEY: generateKeyringKey() });
		expect(other.stdout).toMatch(/^alice: enabled, secrets do not open under this KEYRING_KEY/);
		const rotate = await keys(["rotate", "alice"], { KEYRING_KEY: generateKeyringKey() });
		expect(rotate.stderr.trim()).toBe("keys rotate: the secrets of alice do not decrypt under this KEYRING_KEY (another key, or a changed record)");
	});

	it("--persist-to selects another local state folder, as wrangler takes it", async () => {
		const other = join(folder, "other-state");
		await json(["add", "elsewhere", "--persist-to", other]);
		expect((await keys(["show", "elsewhere"])).code).toBe(1);
		expect((await json<{ id: string }>(["show", "elsewhere", "--persist-to", other])).id).toBe("elsewhere");
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
	])("%j: one line and the usage, exit 2", async (args, line) => {
		const result = await keys(args);
		expect(result.stderr.split("\n")[0]).toBe(line);
		expect(result.stderr).toMatch(/usage: npm run keys -- /);
		expect(result.stderr).not.toMatch(/^\s+at /m);
		expect(result.code).toBe(2);
	});

	it("--help names every command; COMMAND --help describes it, exit 0", async () => {
		const help = await keys(["--help"]);
		expect(help.code).toBe(0);
		for (const command of ["add", "rotate", "revoke", "disable", "enable", "show", "list", "migrate"]) expect(help.stdout).toContain(`  ${command} `);
		const add = await keys(["add", "--help"]);
		expect(add.stdout).toMatch(/^usage: npm run keys -- add ID \[--limits JSON\] \[options\]/);
		expect(add.code).toBe(0);
	});
});

describe("the wrangler-backed namespace (what --remote uses), driven against local storage", () => {
	it("writes, lists, reads and deletes records that the Miniflare-backed namespace sees", async () => {
		const state = join(folder, "wrangler-state");
		const key = await crypto.subtle.importKey("raw", Uint8Array.from(atob(KEYRING_KEY), (c) => c.charCodeAt(0)), "AES-GCM", false, ["encrypt", "decrypt"]);
		const viaWrangler = wranglerNamespace(["--local", "--persist-to", state], { cwd: folder });
		try {
			const admin = new KeyringAdmin(viaWrangler, key);
			const secret = await admin.add("remote-a");
			await admin.add("remote-b");
			await admin.revoke("remote-b");
			expect((await admin.list()).clients.map((c) => c.id)).toEqual(["remote-a"]);
			const local = await openLocalNamespace({ persistTo: state, namespaceId: readLocalNamespaceId(folder) });
			try {
				const seen = await new KeyringAdmin(local, key).show("remote-a");
				expect(seen.secrets).toBe(1);
				expect(JSON.stringify(await local.getMany(["client:remote-a"]))).not.toContain(secret);
			} finally {
				await local.close();
			}
		} finally {
			await viaWrangler.close();
		}
	});
});

async function withLocal<T>(use: (namespace: Awaited<ReturnType<typeof openLocalNamespace>>, admin: KeyringAdmin) => Promise<T>): Promise<T> {
	const namespace = await openLocalNamespace({ persistTo: join(folder, ".wrangler/state"), namespaceId: readLocalNamespaceId(folder) });
	const key = await crypto.subtle.importKey("raw", Uint8Array.from(atob(KEYRING_KEY), (c) => c.charCodeAt(0)), "AES-GCM", false, ["encrypt", "decrypt"]);
	try {
		return await use(namespace, new KeyringAdmin(namespace, key));
	} finally {
		await namespace.close();
	}
}


describe("npm run dev's KEYRING_KEY in .dev.vars", () => {
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
});
