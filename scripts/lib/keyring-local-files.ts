// The local KV namespace of `npm run dev`, read and written in its own files, without starting
// workerd (docs/design.md, "Keyring": the admin CLI). Miniflare keeps a KV namespace as a Durable
// Object's SQLite database (`_mf_entries`: key, blob id, expiration, metadata) and one file per
// value under `kv/<namespace id>/blobs/`, as wrangler's `kv key put --local` leaves it. This
// module writes exactly that, in a transaction, and is used only when it finds that layout: a
// folder never written (or a layout it does not know) goes through Miniflare instead.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AdminNamespace } from "./admin-namespace.ts";

/** The Durable Object class whose SQLite database holds a KV namespace in Miniflare's persistence. */
const KV_OBJECT = "miniflare-KVNamespaceObject";
const ENTRIES_COLUMNS = "blob_id,expiration,key,metadata";


interface SqliteStatement {
	all(...params: unknown[]): Record<string, unknown>[];
	run(...params: unknown[]): unknown;
}
interface SqliteDatabase {
	exec(sql: string): void;
	prepare(sql: string): SqliteStatement;
	close(): void;
}

/**
 * The file name of the Durable Object database of `name` (the namespace id), as workerd derives
 * an object id from a name: HMAC-SHA256 under SHA-256 of the class's unique key, 16 bytes, and
 * 16 bytes of HMAC of those.
 */
export function kvObjectFileName(namespaceId: string): string {
	const key = createHash("sha256").update(KV_OBJECT).digest();
	const head = createHmac("sha256", key).update(namespaceId).digest().subarray(0, 16);
	const tail = createHmac("sha256", key).update(head).digest().subarray(0, 16);
	return `${Buffer.concat([head, tail]).toString("hex")}.sqlite`;
}

/** A blob id as Miniflare makes one: 32 random bytes and the time in milliseconds, hex. */
function blobId(): string {
	const id = Buffer.alloc(40);
	randomBytes(32).copy(id);
	id.writeBigInt64BE(BigInt(Date.now()), 32);
	return id.toString("hex");
}

/** `node:sqlite`, without its one-line experimental warning on stderr (the CLI's JSON output is read from it); null where Node lacks it. */
async function loadSqlite(): Promise<(new (path: string) => SqliteDatabase) | null> {
	const emitWarning = process.emitWarning;
	process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
		const text = typeof warning === "string" ? warning : warning.message;
		if (!/SQLite/i.test(text)) (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
	}) as typeof process.emitWarning;
	try {
		return ((await import("node:sqlite")) as unknown as { DatabaseSync: new (path: string) => SqliteDatabase }).DatabaseSync;
	} catch {
		return null;
	} finally {
		process.emitWarning = emitWarning;
	}
}

/**
 * The namespace `namespaceId` under `<persistTo>/v3`, in its files, or null when they are not
 * there in the layout this module knows (then Miniflare opens it, and creates it).
 */
export async function openLocalFiles(options: { persistTo: string; namespaceId: string }): Promise<AdminNamespace | null> {
	const kvRoot = join(options.persistTo, "v3", "kv");
	const databasePath = join(kvRoot, KV_OBJECT, kvObjectFileName(options.namespaceId));
	const blobs = join(kvRoot, options.namespaceId, "blobs");
	if (!existsSync(databasePath)) return null;
	const DatabaseSync = await loadSqlite();
	if (DatabaseSync === null) return null;
	const db = new DatabaseSync(databasePath);
	try {
		// A running `npm run dev` holds the same database: wait for its writes rather than fail.
		db.exec("PRAGMA busy_timeout = 5000");
		const columns = db.prepare("SELECT name FROM pragma_table_info('_mf_entries') ORDER BY name").all().map((row) => row.name).join(",");
		if (columns !== ENTRIES_COLUMNS) {
			db.close();
			return null;
		}
	} catch (error) {
		db.close();
		throw error;
	}
	const live = "(expiration IS NULL OR expiration >= ?)";
	const select = db.prepare(`SELECT blob_id FROM _mf_entries WHERE key = ? AND ${live}`);
	const upsert = db.prepare("INSERT OR REPLACE INTO _mf_entries (key, blob_id, expiration, metadata) VALUES (?, ?, NULL, NULL)");
	const previous = db.prepare("SELECT blob_id FROM _mf_entries WHERE key = ?");
	const remove = db.prepare("DELETE FROM _mf_entries WHERE key = ? RETURNING blob_id");
	const keys = db.prepare(`SELECT key FROM _mf_entries WHERE substr(key, 1, ?) = ? AND ${live} ORDER BY key`);
	const dropBlob = (id: unknown) => {
		if (typeof id === "string" && /^[0-9a-f]+$/.test(id)) rmSync(join(blobs, id), { force: true });
	};
	const namespace: AdminNamespace = {
		async getMany(names) {
			return names.map((name) => {
				const id = select.all(name, Date.now())[0]?.blob_id;
				return typeof id === "string" && existsSync(join(blobs, id)) ? readFileSync(join(blobs, id), "utf8") : null;
			});
		},
		async put(name, value) {
			// The value first, under a fresh id nothing names yet; then the entry points at it.
			mkdirSync(blobs, { recursive: true });
			const id = blobId();
			writeFileSync(join(blobs, id), value);
			db.exec("BEGIN IMMEDIATE");
			let old: unknown;
			try {
				old = previous.all(name)[0]?.blob_id;
				upsert.run(name, id);
				db.exec("COMMIT");
			} catch (error) {
				db.exec("ROLLBACK");
				rmSync(join(blobs, id), { force: true });
				throw error;
			}
			dropBlob(old);
		},
		async putMany(entries) {
			for (const { key, value } of entries) await namespace.put(key, value);
		},
		async delete(name) {
			for (const row of remove.all(name)) dropBlob(row.blob_id);
		},
		async list(prefix) {
			return keys.all(prefix.length, prefix, Date.now()).map((row) => String(row.key));
		},
		async close() {
			db.close();
		},
	};
	return namespace;
}
