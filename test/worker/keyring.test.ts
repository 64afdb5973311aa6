import { env as bindings } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env.ts";
import { recordKey, type RecordContent, type StoredRecord } from "../../src/keyring/record.ts";
import { decodeKeyringKey, generateKeyringKey, importKeyringKey } from "../../src/keyring/sealing.ts";
import { sealedRecord } from "../fixtures/keyring.ts";
import { signedInit, signedV2Init } from "../fixtures/signed.ts";
import { errorBody, harness, type Harness, sampleValue, scrape, SECRET } from "./harness.ts";

// The keyring in KV through the whole Worker, on Miniflare's KV (the KEYRING binding of
// wrangler.toml). Ids are unique per test: the namespace is shared by the file.
const kv = (bindings as Env).KEYRING!;
const KEYRING_KEY = generateKeyringKey();
const key = await importKeyringKey(decodeKeyringKey(KEYRING_KEY)!);
let unique = 0;

async function put(id: string, secrets: string[], extra: Partial<RecordContent> = {}, under = id, sealKey = key): Promise<StoredRecord> {
	const record = await sealedRecord(sealKey, id, secrets, extra);
	await kv.put(recordKey(under), JSON.stringify(record));
	return record;
}

/** A KV binding that counts reads and can be made to fail; `backing` answers them (Miniflare's KV by default). */
function observedKv(backing: Pick<KVNamespace, "get"> = kv) {
	const observed = {
		reads: 0,
		failing: false,
		get: (async (name: string, options: KVNamespaceGetOptions<"json">) => {
			observed.reads++;
			if (observed.failing) throw new Error("KV GET failed: 503 (injected)");
			return backing.get(name, options);
		}) as KVNamespace["get"],
	};
	return observed;
}

/** A gateway with the keyring on (KV read through `observedKv()`), production, memory replay store. */
function keyringHarness(overrides: Partial<Record<keyof Env, string>> = {}, backing?: Pick<KVNamespace, "get">) {
	const namespace = observedKv(backing);
	const h = harness({ KEYRING_KEY, ...overrides }, { upstash: false });
	h.env.KEYRING = namespace as unknown as KVNamespace;
	return { h, namespace };
}

/** A v1 request from `clientId` signed with `secret` at the harness's clock (a fresh body each time: no replay). */
async function v1(h: Harness, clientId: string, secret: string): Promise<Request> {
	const { path, init } = await signedInit({ clientId, secret, timestamp: h.clock.now, body: JSON.stringify({ n: unique++ }) }, { clientId, secret, timestamp: h.clock.now });
	return new Request(`https://gateway.test${path}`, init);
}

async function v2(h: Harness, clientId: string, secret: string): Promise<Request> {
	const { target, init } = await signedV2Init({}, { clientId, secret, created: Math.floor(h.clock.now / 1000), nonce: `keyring-nonce-${String(unique++).padStart(8, "0")}` });
	return new Request(`https://gateway.test${target}`, init);
}

async function status(h: Harness, request: Request | Promise<Request>): Promise<number> {
	return (await h.fetch(await request)).status;
}

/** The exact answer bytes of a refused signature, for comparing refusals. */
async function refusal(h: Harness, request: Request): Promise<string> {
	const response = await h.fetch(request);
	expect(response.status).toBe(403);
	return `${response.status} ${response.headers.get("content-type")} ${await response.text()}`;
}

describe("the keyring in KV, through the Worker", () => {
	it("primes agent_keyring_lookups_total: every result at 0 before the first request", async () => {
		const { h } = keyringHarness();
		const text = await scrape(h);
		for (const result of ["hit", "miss", "kv_read", "kv_error", "undecryptable", "throttled"]) {
			expect(sampleValue(text, "agent_keyring_lookups_total", { result }), result).toBe(0);
		}
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "keyring_unavailable" })).toBe(0);
	});

	it("verifies a keyring client with v1 and v2, forwards its id, and reads KV once per cache period", async () => {
		const { h, namespace } = keyringHarness();
		await put("kr-alice", ["alice-secret-of-at-least-32-chars!"]);
		expect(await status(h, v1(h, "kr-alice", "alice-secret-of-at-least-32-chars!"))).toBe(200);
		expect(await status(h, v2(h, "kr-alice", "alice-secret-of-at-least-32-chars!"))).toBe(200);
		expect(h.origin.requests.map((r) => r.headers.get("x-client-id"))).toEqual(["kr-alice", "kr-alice"]);
		expect(namespace.reads).toBe(1);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_keyring_lookups_total", { result: "hit" })).toBe(2);
		expect(sampleValue(text, "agent_keyring_lookups_total", { result: "kv_read" })).toBe(1);
	});

	it("where the keyring and HMAC_CLIENTS both name an id, the keyring wins; an id it does not name goes to HMAC_CLIENTS, then HMAC_SECRET", async () => {
		const { h } = keyringHarness({ HMAC_CLIENTS: JSON.stringify({ "kr-both": "env-secret-of-at-least-32-chars!!", "kr-env": "env-only-secret-of-32-characters!" }) });
		await put("kr-both", ["keyring-secret-of-32-characters!!"]);
		expect(await status(h, v1(h, "kr-both", "keyring-secret-of-32-characters!!"))).toBe(200);
		expect(await status(h, v1(h, "kr-both", "env-secret-of-at-least-32-chars!!"))).toBe(403);
		expect(await status(h, v1(h, "kr-env", "env-only-secret-of-32-characters!"))).toBe(200);
		expect(await status(h, v1(h, "kr-shared", SECRET))).toBe(200);
	});

	it("refuses a disabled client and another case of a keyring id like an unknown one, never with the shared secret", async () => {
		const { h } = keyringHarness();
		await put("kr-off", ["off-secret-of-at-least-32-chars!!"], { disabled: true });
		await put("kr-case", ["case-secret-of-at-least-32-chars!"]);
		const bad = await refusal(h, await v1(h, "kr-nobody-here", "not-the-secret"));
		for (const request of [
			await v1(h, "kr-off", "off-secret-of-at-least-32-chars!!"),
			await v1(h, "kr-off", SECRET),
			await v1(h, "KR-CASE", SECRET),
			await v1(h, "kr-Case", "case-secret-of-at-least-32-chars!"),
		]) {
			expect(await refusal(h, request)).toBe(bad);
		}
		expect(sampleValue(await scrape(h), "agent_chat_requests_total", { auth: "fail", mode: "unknown_client" })).toBe(4);
	});

	it("refuses a record under another key, moved to another id, or tampered with: 403 like an unknown client, logged, counted, never a crash", async () => {
		const { h } = keyringHarness();
		const secret = "sealed-secret-of-at-least-32-chars";
		await put("kr-other-key", [secret], {}, "kr-other-key", await importKeyringKey(decodeKeyringKey(generateKeyringKey())!));
		const moved = await put("kr-mover", [secret]);
		await kv.put(recordKey("kr-moved"), JSON.stringify({ ...moved, id: "kr-moved" }));
		const tampered = await put("kr-tampered", [secret]);
		const bytes = Uint8Array.from(atob(tampered.sealed), (c) => c.charCodeAt(0));
		bytes[bytes.length - 1]! ^= 0x80;
		await kv.put(recordKey("kr-tampered"), JSON.stringify({ ...tampered, sealed: btoa(String.fromCharCode(...bytes)) }));
		await kv.put(recordKey("kr-junk"), "{not json");

		const bad = await refusal(h, await v1(h, "kr-nobody-here", "not-the-secret"));
		for (const id of ["kr-other-key", "kr-moved", "kr-tampered", "kr-junk"]) {
			expect(await refusal(h, await v1(h, id, secret)), id).toBe(bad);
			expect(await refusal(h, await v1(h, id, SECRET)), `${id}, shared secret`).toBe(bad);
		}
		expect(await status(h, v1(h, "kr-mover", secret))).toBe(200);
		expect(sampleValue(await scrape(h), "agent_keyring_lookups_total", { result: "undecryptable" })).toBe(8);
		const errors = h.logs.filter((line) => line.level === "error");
		expect(errors.map((line) => line.fields.clientId)).toEqual(["kr-other-key", "kr-moved", "kr-tampered", "kr-junk"]);
		expect(JSON.stringify(h.logs)).not.toContain(tampered.sealed);
		expect(JSON.stringify(h.logs)).not.toContain(secret);
	});

	it("rotation: both secrets verify during the overlap, then, once the record drops the old one and the cache period has passed, only the new", async () => {
		const { h } = keyringHarness();
		const [fresh, old] = ["rotated-new-secret-of-32-characters", "rotated-old-secret-of-32-characters"];
		await put("kr-rot", [old]);
		expect(await status(h, v1(h, "kr-rot", old))).toBe(200);
		await put("kr-rot", [fresh, old]);
		h.clock.now += 30_000;
		expect(await status(h, v1(h, "kr-rot", fresh))).toBe(200);
		expect(await status(h, v1(h, "kr-rot", old))).toBe(200);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { slot: "1" })).toBe(1);
		await put("kr-rot", [fresh]);
		h.clock.now += 30_000;
		expect(await status(h, v1(h, "kr-rot", fresh))).toBe(200);
		expect(await status(h, v1(h, "kr-rot", old))).toBe(403);
	});

	it("revocation: served inside the cache period, refused once it has passed (KEYRING_CACHE_MS)", async () => {
		const { h } = keyringHarness({ KEYRING_CACHE_MS: "5000" });
		const secret = "revoked-secret-of-at-least-32-chars";
		await put("kr-revoked", [secret]);
		expect(await status(h, v1(h, "kr-revoked", secret))).toBe(200);
		await kv.delete(recordKey("kr-revoked"));
		h.clock.now += 4_999;
		expect(await status(h, v1(h, "kr-revoked", secret))).toBe(200);
		h.clock.now += 1;
		expect(await status(h, v1(h, "kr-revoked", secret))).toBe(403);
		// Disabled likewise.
		await put("kr-disabled-later", [secret]);
		expect(await status(h, v1(h, "kr-disabled-later", secret))).toBe(200);
		await put("kr-disabled-later", [secret], { disabled: true });
		h.clock.now += 5_000;
		expect(await status(h, v1(h, "kr-disabled-later", secret))).toBe(403);
	});

	it("caches misses: a forged id sent 50 times costs one KV read per cache period", async () => {
		const { h, namespace } = keyringHarness();
		for (let i = 0; i < 50; i++) expect(await status(h, v1(h, "kr-forged", "whatever-secret"))).toBe(403);
		expect(namespace.reads).toBe(1);
		h.clock.now += 30_000;
		expect(await status(h, v1(h, "kr-forged", "whatever-secret"))).toBe(403);
		expect(namespace.reads).toBe(2);
		expect(sampleValue(await scrape(h), "agent_keyring_lookups_total", { result: "miss" })).toBe(51);
	});

	it("KV failing: the last known record serves; an id never seen gets 503 keyring_unavailable, never a pass", async () => {
		const { h, namespace } = keyringHarness();
		const secret = "known-secret-of-at-least-32-chars!";
		await put("kr-known", [secret]);
		expect(await status(h, v1(h, "kr-known", secret))).toBe(200);
		namespace.failing = true;
		h.clock.now += 30_000;
		expect(await status(h, v1(h, "kr-known", secret))).toBe(200);
		// Never seen: the shared secret would verify it, but the keyring might name it.
		const response = await h.fetch(await v1(h, "kr-never-seen", SECRET));
		expect(response.status).toBe(503);
		expect(await errorBody(response)).toEqual({ code: "keyring_unavailable", detail: "The gateway cannot reach its keyring; try again shortly." });
		expect(h.origin.requests).toHaveLength(2);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_keyring_lookups_total", { result: "kv_error" })).toBe(2);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "keyring_unavailable" })).toBe(1);
		expect(h.logs.some((line) => line.level === "warn" && line.message.startsWith("keyring read failed"))).toBe(true);
		namespace.failing = false;
		expect(await status(h, v1(h, "kr-never-seen", SECRET))).toBe(200);
	});

	it("holds 10,000 clients: each verifies with its own secret, not another's", async () => {
		// 10,000 sealed records in a Map behind KV's get (Miniflare's KV is the rest of this file's).
		const values = new Map<string, string>();
		const secretOf = (i: number) => `ten-thousand-client-secret-${String(i).padStart(5, "0")}`;
		for (let i = 0; i < 10_000; i++) values.set(recordKey(`kr-10k-${i}`), JSON.stringify(await sealedRecord(key, `kr-10k-${i}`, [secretOf(i)])));
		const backing = { get: async (name: string) => (values.has(name) ? JSON.parse(values.get(name)!) : null) } as unknown as Pick<KVNamespace, "get">;
		const { h, namespace } = keyringHarness({}, backing);
		for (const i of [0, 1, 4_999, 9_998, 9_999]) {
			expect(await status(h, v1(h, `kr-10k-${i}`, secretOf(i))), `client ${i}`).toBe(200);
			expect(await status(h, v1(h, `kr-10k-${i}`, secretOf((i + 1) % 10_000))), `client ${i}, another's secret`).toBe(403);
		}
		expect(namespace.reads).toBe(5);
	});

	it("refuses a KEYRING_KEY that is not 32 bytes of base64, or one without the KEYRING binding: 500 config_error naming it, never its value", async () => {
		const bad = harness({ KEYRING_KEY: "c2hvcnQ=" }, { upstash: false });
		const response = await bad.fetch(await v1(bad, "kr-x", SECRET));
		expect(response.status).toBe(500);
		const body = await errorBody(response);
		expect(body.code).toBe("config_error");
		expect(body.detail).toContain("KEYRING_KEY must be 32 bytes in base64");
		expect(body.detail).not.toContain("c2hvcnQ=");
		const unbound = harness({ KEYRING_KEY }, { upstash: false });
		unbound.env.KEYRING = undefined;
		expect((await errorBody(await unbound.fetch(await v1(unbound, "kr-x", SECRET)))).detail).toContain("KEYRING_KEY is set but the Worker has no KEYRING binding");
	});

	it("with the keyring on and no other secret, a signed request is judged (not 500 config_error)", async () => {
		const { h } = keyringHarness({ HMAC_SECRET: "" });
		await put("kr-only", ["only-keyring-secret-of-32-chars!!"]);
		expect(await status(h, v1(h, "kr-only", "only-keyring-secret-of-32-chars!!"))).toBe(200);
		expect(await status(h, v1(h, "kr-unknown", "x"))).toBe(403);
	});

	it("refuses a record edited without the key (a field added, the first format's fields), moved, or sealed for another id: 403, never the shared secret", async () => {
		const { h } = keyringHarness();
		const secret = "edited-secret-of-at-least-32-chars!";
		const off = await put("kr-edit-off", [secret], { disabled: true });
		await kv.put(recordKey("kr-edit-off"), JSON.stringify({ ...off, disabled: false }));
		const limited = await put("kr-edit-limits", [secret], { limits: { rpm: 1 } });
		await kv.put(recordKey("kr-edit-limits"), JSON.stringify({ ...limited, limits: {} }));
		await kv.put(recordKey("kr-edit-first"), JSON.stringify({ v: 1, id: "kr-edit-first", secrets: limited.sealed, disabled: false, createdAt: "t", updatedAt: "t" }));
		for (const id of ["kr-edit-off", "kr-edit-limits", "kr-edit-first"]) {
			expect(await status(h, v1(h, id, secret)), id).toBe(403);
			expect(await status(h, v1(h, id, SECRET)), `${id}, shared secret`).toBe(403);
		}
		expect(sampleValue(await scrape(h), "agent_keyring_lookups_total", { result: "undecryptable" })).toBe(6);
		expect(h.origin.requests).toHaveLength(0);
	});

	it("refuses a revoked id (its tombstone) with its old secret and with the shared secret", async () => {
		const { h } = keyringHarness();
		const secret = "tombstoned-secret-of-32-characters";
		await put("kr-tomb", [], { revoked: true });
		expect(await status(h, v1(h, "kr-tomb", secret))).toBe(403);
		expect(await status(h, v1(h, "kr-tomb", SECRET))).toBe(403);
		expect(await status(h, v2(h, "kr-tomb", SECRET))).toBe(403);
		// Once the tombstone is forgotten, the shared secret serves the id (at once: the failed signature read it again).
		await kv.delete(recordKey("kr-tomb"));
		h.clock.now += 1_000;
		expect(await status(h, v1(h, "kr-tomb", SECRET))).toBe(200);
	});

	it("with the KEYRING binding and no KEYRING_KEY: an id that has a record is 503 keyring_unavailable (v1 and v2), never the shared secret; others are served", async () => {
		await put("kr-keyless", ["keyless-secret-of-at-least-32-chars"]);
		await put("kr-keyless-off", ["keyless-secret-of-at-least-32-chars"], { disabled: true });
		const { h, namespace } = keyringHarness({ KEYRING_KEY: "" });
		for (const request of [v1(h, "kr-keyless", SECRET), v2(h, "kr-keyless", SECRET), v1(h, "kr-keyless", "keyless-secret-of-at-least-32-chars"), v1(h, "kr-keyless-off", SECRET)]) {
			const response = await h.fetch(await request);
			expect(response.status).toBe(503);
			expect((await errorBody(response)).code).toBe("keyring_unavailable");
		}
		expect(h.origin.requests).toHaveLength(0);
		expect(await status(h, v1(h, "kr-keyless-other", SECRET))).toBe(200);
		expect(namespace.reads).toBe(3);
		expect(sampleValue(await scrape(h), "agent_keyring_lookups_total", { result: "no_key" })).toBe(4);
		expect(h.logs.filter((line) => line.level === "error" && line.message.includes("KEYRING_KEY is not"))).toHaveLength(1);
		expect(h.logs.some((line) => line.level === "warn" && line.message.startsWith("the KEYRING binding is set but KEYRING_KEY is not"))).toBe(true);
	});

	it("a new secret works at once: after rotate the new one verifies before the cache period ends, and so does a client added after its id was a miss", async () => {
		const { h, namespace } = keyringHarness();
		const [old, fresh] = ["at-once-old-secret-of-32-characters", "at-once-new-secret-of-32-characters"];
		await put("kr-now", [old]);
		expect(await status(h, v1(h, "kr-now", old))).toBe(200);
		await put("kr-now", [fresh, old]);
		// Within a second of the last read, the cached record answers (one re-read per id per second).
		expect(await status(h, v1(h, "kr-now", fresh))).toBe(403);
		h.clock.now += 1_000;
		expect(await status(h, v1(h, "kr-now", fresh))).toBe(200);
		expect(await status(h, v1(h, "kr-now", old))).toBe(200);
		expect(namespace.reads).toBe(2);
		// A revocation keeps the cache period: the dropped secret verifies from the cache until it ends.
		await put("kr-now", [fresh]);
		h.clock.now += 1_000;
		expect(await status(h, v1(h, "kr-now", old))).toBe(200);
		h.clock.now += 30_000;
		expect(await status(h, v1(h, "kr-now", old))).toBe(403);

		const added = "added-after-miss-secret-of-32-chars";
		expect(await status(h, v1(h, "kr-added", added))).toBe(403);
		await put("kr-added", [added]);
		h.clock.now += 1_000;
		expect(await status(h, v1(h, "kr-added", added))).toBe(200);
	});

	it("rotating KEYRING_KEY: with two keys (new first) records under either open; with only the new one, those under the old are refused", async () => {
		const oldKeyText = generateKeyringKey();
		const oldKey = await importKeyringKey(decodeKeyringKey(oldKeyText)!);
		const secret = "key-rotation-secret-of-32-characters";
		await put("kr-under-old", [secret], {}, "kr-under-old", oldKey);
		await put("kr-under-new", [secret]);
		const both = keyringHarness({ KEYRING_KEY: `${KEYRING_KEY},${oldKeyText}` }).h;
		expect(await status(both, v1(both, "kr-under-old", secret))).toBe(200);
		expect(await status(both, v1(both, "kr-under-new", secret))).toBe(200);
		const newOnly = keyringHarness().h;
		expect(await status(newOnly, v1(newOnly, "kr-under-old", secret))).toBe(403);
		const three = harness({ KEYRING_KEY: `${KEYRING_KEY},${oldKeyText},${generateKeyringKey()}` }, { upstash: false });
		three.env.KEYRING = kv;
		expect((await errorBody(await three.fetch(await v1(three, "kr-x", SECRET)))).detail).toContain("KEYRING_KEY must be 32 bytes in base64");
	});

	it("agent_auth_secret_slot_total carries the client label for ids CLIENT_LIMITS lists, and only those", async () => {
		const { h } = keyringHarness({ CLIENT_LIMITS: JSON.stringify({ "kr-watched": { label: true } }) });
		const [fresh, old] = ["watched-new-secret-of-32-characters", "watched-old-secret-of-32-characters"];
		await put("kr-watched", [fresh, old]);
		await put("kr-unwatched", [fresh, old]);
		expect(await status(h, v1(h, "kr-watched", old))).toBe(200);
		expect(await status(h, v1(h, "kr-unwatched", old))).toBe(200);
		expect(await status(h, v2(h, "kr-watched", old))).toBe(200);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { client: "kr-watched", slot: "1" })).toBe(2);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { client: "", slot: "1" })).toBe(1);
		expect(sampleValue(text, "agent_auth_secret_slot_total", { client: "kr-watched", slot: "0" })).toBe(0);
		expect(text).not.toContain('client="kr-unwatched"');
	});
});
