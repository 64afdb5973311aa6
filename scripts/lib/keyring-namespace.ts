// Where `npm run keys` reads and writes keyring records: the local namespace that `npm run dev`
// (wrangler dev) reads, in its files (keyring-local-files.ts) or, where they are not there yet,
// through Miniflare's API with wrangler's own persistence layout; or a deployed namespace
// through wrangler (`wrangler kv ... --remote`).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { AdminNamespace } from "./admin-namespace.ts";
import { openLocalFiles } from "./keyring-local-files.ts";

export type { AdminNamespace } from "./admin-namespace.ts";

export const KEYRING_BINDING = "KEYRING";
/** Where wrangler dev keeps local state, relative to wrangler.toml's folder. */
export const DEFAULT_PERSIST_TO = ".wrangler/state";

/**
 * The id of the `KEYRING` KV binding that wrangler.toml declares at the top level (`env`
 * null: the namespace `wrangler dev`, and so `npm run dev`, uses locally) or for
 * `[env.NAME]`. Null when there is none.
 */
export function keyringNamespaceId(wranglerToml: string, env: string | null = null): string | null {
	const wanted = env === null ? "kv_namespaces" : `env.${env}.kv_namespaces`;
	let table = "";
	let binding: string | null = null;
	let id: string | null = null;
	const found = () => (table === wanted && binding === KEYRING_BINDING ? id : null);
	for (const line of wranglerToml.split("\n")) {
		const header = /^\s*\[\[?([^\]]+)\]\]?\s*(#.*)?$/.exec(line);
		if (header !== null) {
			if (found() !== null) return found();
			table = header[1]!.trim();
			binding = id = null;
			continue;
		}
		if (table !== wanted) continue;
		const pair = /^\s*(binding|id)\s*=\s*"([^"]*)"/.exec(line);
		if (pair?.[1] === "binding") binding = pair[2]!;
		else if (pair?.[1] === "id") id = pair[2]!;
	}
	return found();
}

/**
 * The local namespace, as wrangler opens it for `wrangler kv key put --local`: the same
 * persistence root (`<persistTo>/v3`) and namespace id, so `npm run dev` sees every change. In
 * its files when they are there (no workerd to start: a tenth of the time), else through Miniflare.
 */
export async function openLocalNamespace(options: { persistTo: string; namespaceId: string }): Promise<AdminNamespace> {
	return (await openLocalFiles({ persistTo: resolve(options.persistTo), namespaceId: options.namespaceId })) ?? openMiniflareNamespace(options);
}

/** The local namespace through Miniflare's API (workerd started for it): what creates its files. */
export async function openMiniflareNamespace(options: { persistTo: string; namespaceId: string }): Promise<AdminNamespace> {
	// Loaded here: check-config reads wrangler.toml through this module and needs no workerd.
	const { convertV4MiniflareOptions, Miniflare } = await import("miniflare");
	const mf = new Miniflare(
		convertV4MiniflareOptions({
			script: 'addEventListener("fetch", (e) => e.respondWith(new Response(null, { status: 404 })))',
			resourcePersistencePath: join(resolve(options.persistTo), "v3"),
			kvNamespaces: { [KEYRING_BINDING]: options.namespaceId },
		}),
	);
	const kv = await mf.getKVNamespace(KEYRING_BINDING);
	return {
		getMany: (keys) => Promise.all(keys.map((key) => kv.get(key, "text"))),
		put: (key, value) => kv.put(key, value),
		async putMany(entries) {
			for (const { key, value } of entries) await kv.put(key, value);
		},
		delete: (key) => kv.delete(key),
		async list(prefix) {
			const names: string[] = [];
			let cursor: string | undefined;
			do {
				const page = await kv.list({ prefix, ...(cursor === undefined ? {} : { cursor }) });
				names.push(...page.keys.map((key) => key.name));
				cursor = page.list_complete ? undefined : page.cursor;
			} while (cursor !== undefined);
			return names;
		},
		close: () => mf.dispose(),
	};
}

/** A wrangler command that failed: its last line of output, never the values it was given. */
export class WranglerError extends Error {
	override readonly name = "WranglerError";
}

/**
 * A namespace through wrangler's CLI: `target` selects it as wrangler takes it
 * (`["--remote", "--env", "production"]`, or `["--local", "--persist-to", dir]`).
 */
export function wranglerNamespace(target: readonly string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): AdminNamespace {
	const wranglerBin = wranglerBinPath();
	const scratch = mkdtempSync(join(tmpdir(), "keyring-"));
	const run = (args: readonly string[]) =>
		new Promise<string>((done, fail) => {
			execFile(
				process.execPath,
				[wranglerBin, "kv", ...args, "--binding", KEYRING_BINDING, ...target],
				{ cwd: options.cwd, env: { ...(options.env ?? process.env), WRANGLER_SEND_METRICS: "false" }, maxBuffer: 256 * 1024 * 1024 },
				(error, stdout, stderr) => {
					if (error === null) return done(stdout);
					const last = `${stderr}\n${stdout}`.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !/^[▲✘]?\s*$/.test(l)).at(-1);
					fail(new WranglerError(`wrangler kv ${args[0]} ${args[1]} failed: ${last ?? `exit ${String(error.code)}`}`));
				},
			);
		});
	return {
		async getMany(keys) {
			if (keys.length === 0) return [];
			const file = join(scratch, "keys.json");
			writeFileSync(file, JSON.stringify(keys));
			const values = JSON.parse(await run(["bulk", "get", file])) as Record<string, { value: string | null } | undefined>;
			return keys.map((key) => values[key]?.value ?? null);
		},
		async put(key, value) {
			const file = join(scratch, "value.json");
			writeFileSync(file, value, { mode: 0o600 });
			try {
				await run(["key", "put", key, "--path", file]);
			} finally {
				rmSync(file, { force: true });
			}
		},
		async putMany(entries) {
			if (entries.length === 0) return;
			const file = join(scratch, "values.json");
			writeFileSync(file, JSON.stringify(entries), { mode: 0o600 });
			try {
				await run(["bulk", "put", file]);
			} finally {
				rmSync(file, { force: true });
			}
		},
		async delete(key) {
			await run(["key", "delete", key]);
		},
		async list(prefix) {
			const keys = JSON.parse(await run(["key", "list", "--prefix", prefix])) as { name: string }[];
			return keys.map((key) => key.name);
		},
		async close() {
			rmSync(scratch, { recursive: true, force: true });
		},
	};
}

/** wrangler's own launcher (its package exports only the API): run with this Node. */
export function wranglerBinPath(): string {
	return resolve(dirname(createRequire(import.meta.url).resolve("wrangler")), "../bin/wrangler.js");
}

/** The wrangler.toml of `cwd`, read for the local namespace id. */
export function readLocalNamespaceId(cwd: string): string {
	let text: string;
	try {
		text = readFileSync(join(cwd, "wrangler.toml"), "utf8");
	} catch {
		throw new Error("no wrangler.toml in this folder: run npm run keys from the repository");
	}
	const id = keyringNamespaceId(text);
	if (id === null) throw new Error(`wrangler.toml has no top-level [[kv_namespaces]] binding "${KEYRING_BINDING}"`);
	return id;
}
