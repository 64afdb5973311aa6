import { describe, expect, it, vi } from "vitest";
import { Keyring, type KeySource } from "../auth/crypto.ts";
import { RecordedEvents, recordingLogger } from "../../test/fixtures/keyring.ts";
import { KeyringKeySource, keyringKeySource } from "./key-source.ts";
import type { KeyringLookupResult } from "./lookup.ts";

const environment = new Keyring({ sharedSecrets: ["shared-secret"], clientSecrets: new Map([["env-client", ["env-secret"]]]) });

function sourceAnswering(result: KeyringLookupResult): KeySource {
	return new KeyringKeySource({ lookup: async () => result }, environment);
}

describe("KeyringKeySource", () => {
	it("answers with the record's keys when the keyring has the id", async () => {
		const key = await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
		const found = sourceAnswering({ kind: "found", client: { clientId: "a", secrets: ["s"], keys: Promise.resolve([key]) } });
		expect(await found.keysFor("a")).toEqual({ status: "found", keys: [key] });
	});

	it("goes to the environment's keys only when the keyring does not name the id", async () => {
		const absent = sourceAnswering({ kind: "absent" });
		expect(await absent.keysFor("env-client")).toMatchObject({ status: "found", keys: [expect.anything()] });
		expect(await absent.keysFor("anyone")).toMatchObject({ status: "found" });
	});

	it.each(["disabled", "revoked", "case_variant", "undecryptable"] as const)("refuses a %s record as unknown, never with the shared secret", async (reason) => {
		expect(await sourceAnswering({ kind: "refused", reason }).keysFor("anyone")).toEqual({ status: "unknown" });
	});

	it.each(["kv_error", "throttled", "no_key"] as const)("answers unavailable (503) when the keyring cannot tell (%s)", async (reason) => {
		expect(await sourceAnswering({ kind: "unavailable", reason }).keysFor("anyone")).toEqual({ status: "unavailable" });
	});

	it("is configured even without any environment secret: the keyring may hold any client", () => {
		expect(new KeyringKeySource({ lookup: async () => ({ kind: "absent" }) }, new Keyring({ sharedSecrets: [], clientSecrets: new Map() })).configured).toBe(true);
	});
});

describe("keyringKeySource", () => {
	const deps = { events: new RecordedEvents(), log: recordingLogger() };
	const settings = { cacheMs: 30_000, maxEntries: 10, timeoutMs: 1000 };
	const kv = { get: async () => null } as unknown as Pick<KVNamespace, "get">;

	it("is the environment's keys alone without the binding", () => {
		expect(keyringKeySource({ ...settings, keys: [new Uint8Array(32)] }, undefined, environment, deps)).toBe(environment);
	});

	it("puts the keyring in front with the binding, even without KEYRING_KEY (its records then refuse their ids)", async () => {
		const withKey = keyringKeySource({ ...settings, keys: [new Uint8Array(32)] }, kv, environment, deps);
		expect(withKey).toBeInstanceOf(KeyringKeySource);
		expect(withKey.configured).toBe(true);
		const record = { get: async () => ({ v: 2, id: "alice", sealed: "c2VhbGVk" }) } as unknown as Pick<KVNamespace, "get">;
		const keyless = keyringKeySource({ ...settings, keys: [] }, record, environment, deps);
		expect(keyless).toBeInstanceOf(KeyringKeySource);
		expect(await keyless.keysFor("alice")).toEqual({ status: "unavailable" });
		// Without a key the keyring verifies nothing: only the environment's secrets make it configured.
		const empty = new Keyring({ sharedSecrets: [], clientSecrets: new Map() });
		expect(keyringKeySource({ ...settings, keys: [] }, kv, empty, deps).configured).toBe(false);
		expect(keyringKeySource({ ...settings, keys: [] }, kv, environment, deps).configured).toBe(true);
	});

	it("a request for an id another request is reading waits out that read's whole budget (KEYRING_TIMEOUT_MS) rather than read again", async () => {
		vi.useFakeTimers();
		try {
			const gets: string[] = [];
			const hanging = { get: (key: string) => (gets.push(key), new Promise(() => {})) } as unknown as Pick<KVNamespace, "get">;
			const source = keyringKeySource({ ...settings, timeoutMs: 1_000, keys: [new Uint8Array(32)] }, hanging, environment, deps);
			const first = source.keysFor("alice");
			const second = source.keysFor("alice");
			await vi.advanceTimersByTimeAsync(999);
			expect(gets).toEqual(["client:alice"]);
			await vi.advanceTimersByTimeAsync(1);
			expect([await first, await second]).toEqual([{ status: "unavailable" }, { status: "unavailable" }]);
			expect(gets).toEqual(["client:alice"]);
		} finally {
			vi.useRealTimers();
		}
	});

	it("reads KV with KV's smallest cacheTtl (30 s), whatever the isolate's cache period: a re-read finds a new secret", async () => {
		const cacheTtls: unknown[] = [];
		const recording = { get: async (_key: string, options: { cacheTtl?: number }) => (cacheTtls.push(options.cacheTtl), null) } as unknown as Pick<KVNamespace, "get">;
		await keyringKeySource({ ...settings, cacheMs: 45_500, keys: [new Uint8Array(32)] }, recording, environment, deps).keysFor("someone");
		await keyringKeySource({ ...settings, cacheMs: 1_000, keys: [new Uint8Array(32)] }, recording, environment, deps).keysFor("someone");
		expect(cacheTtls).toEqual([30, 30]);
	});
});
