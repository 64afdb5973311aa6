import { env as bindings } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../env.ts";
import { freshKey, sealedRecord } from "../../test/fixtures/keyring.ts";
import { recordKey } from "./record.ts";
import { KeyringStoreError, KvKeyringStore, MemoryKeyringStore } from "./store.ts";

const env = bindings as Env;
const OPTIONS = { cacheTtlSeconds: 30, timeoutMs: 1000 };

describe("KvKeyringStore, on Miniflare's KV (the KEYRING binding of wrangler.toml)", () => {
	it("reads a record by its lowercased key, and says absent for an id it does not hold", async () => {
		const record = await sealedRecord(await freshKey(), "Store-Alice", ["s"], { limits: { rpm: 60 } });
		expect(Object.keys(record)).toEqual(["v", "id", "sealed"]);
		await env.KEYRING!.put("client:store-alice", JSON.stringify(record));
		const store = new KvKeyringStore(env.KEYRING!, OPTIONS);
		expect(await store.read("Store-Alice")).toEqual({ kind: "record", record });
		// Another case of the id reads the same key; the lookup refuses it.
		expect(await store.read("store-alice")).toEqual({ kind: "record", record });
		expect(await store.read("store-nobody")).toEqual({ kind: "absent" });
	});

	it("says malformed for a value that is not JSON, or not a record of this format", async () => {
		const store = new KvKeyringStore(env.KEYRING!, OPTIONS);
		const good = await sealedRecord(await freshKey(), "m", ["s"]);
		for (const [id, value] of [
			["m-text", "not json {"],
			["m-array", "[]"],
			["m-later", JSON.stringify({ ...good, id: "m-later", v: 3 })],
			["m-no-sealed", JSON.stringify({ ...good, id: "m-no-sealed", sealed: "" })],
			["m-bad-id", JSON.stringify({ ...good, id: "m bad" })],
			// Anything added beside the sealed text is an edit made without the key.
			["m-disabled", JSON.stringify({ ...good, id: "m-disabled", disabled: false })],
			["m-limits", JSON.stringify({ ...good, id: "m-limits", limits: {} })],
		] as const) {
			await env.KEYRING!.put(recordKey(id), value);
			expect(await store.read(id), id).toEqual({ kind: "malformed", why: "malformed" });
		}
		await env.KEYRING!.put(recordKey("m-first"), JSON.stringify({ v: 1, id: "m-first", secrets: "c2VhbGVk", disabled: false, createdAt: "t", updatedAt: "t" }));
		expect(await store.read("m-first")).toEqual({ kind: "malformed", why: "old_format" });
	});

	it("asks KV with cacheTtl and type json", async () => {
		const calls: unknown[] = [];
		const kv = { get: async (...args: unknown[]) => (calls.push(args), null) } as unknown as Pick<KVNamespace, "get">;
		await new KvKeyringStore(kv, { cacheTtlSeconds: 45, timeoutMs: 1000 }).read("Bob");
		expect(calls).toEqual([["client:bob", { type: "json", cacheTtl: 45 }]]);
	});

	it("turns a failing or hanging KV into KeyringStoreError (error, timeout)", async () => {
		const failing = { get: async () => Promise.reject(new Error("KV GET failed: 500")) } as unknown as Pick<KVNamespace, "get">;
		await expect(new KvKeyringStore(failing, OPTIONS).read("a")).rejects.toMatchObject({ name: "KeyringStoreError", reason: "error" });
		const hanging = { get: () => new Promise(() => {}) } as unknown as Pick<KVNamespace, "get">;
		const error = await new KvKeyringStore(hanging, { cacheTtlSeconds: 30, timeoutMs: 20 }).read("a").catch((e: unknown) => e);
		expect(error).toBeInstanceOf(KeyringStoreError);
		expect((error as KeyringStoreError).reason).toBe("timeout");
	});

	describe("the read's budget, on a fake clock", () => {
		afterEach(() => {
			vi.useRealTimers();
		});

		it("a hanging read is still pending 1 ms before timeoutMs, and a timeout at timeoutMs", async () => {
			vi.useFakeTimers();
			const hanging = { get: () => new Promise(() => {}) } as unknown as Pick<KVNamespace, "get">;
			let settled: unknown = "pending";
			void new KvKeyringStore(hanging, { cacheTtlSeconds: 30, timeoutMs: 250 }).read("a").catch((error: unknown) => {
				settled = error;
			});
			await vi.advanceTimersByTimeAsync(249);
			expect(settled).toBe("pending");
			await vi.advanceTimersByTimeAsync(1);
			expect(settled).toBeInstanceOf(KeyringStoreError);
			expect((settled as KeyringStoreError).reason).toBe("timeout");
		});
	});

	it("refuses a cacheTtl under KV's minimum of 30 s, and a timeout that is not positive, when built", () => {
		expect(() => new KvKeyringStore(env.KEYRING!, { cacheTtlSeconds: 29, timeoutMs: 1 })).toThrow(/at least 30/);
		expect(() => new KvKeyringStore(env.KEYRING!, { cacheTtlSeconds: 30, timeoutMs: 0 })).toThrow(/timeoutMs/);
	});
});

describe("MemoryKeyringStore", () => {
	it("reads like KV: lowercased keys, absent, malformed", async () => {
		const store = new MemoryKeyringStore();
		const record = await sealedRecord(await freshKey(), "Carol", ["s"]);
		store.put(record);
		store.records.set("client:junk", { v: 2 });
		expect(await store.read("CAROL")).toEqual({ kind: "record", record });
		expect(await store.read("dave")).toEqual({ kind: "absent" });
		expect(await store.read("junk")).toEqual({ kind: "malformed", why: "malformed" });
	});
});
