import { env as bindings } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env.ts";
import { recordKey } from "../../src/keyring/record.ts";
import { decodeKeyringKey, generateKeyringKey, importKeyringKey } from "../../src/keyring/sealing.ts";
import { sealedRecord } from "../fixtures/keyring.ts";
import { signedInit } from "../fixtures/signed.ts";
import { errorBody, harness, type Harness } from "./harness.ts";

// Limits a keyring record carries (docs/design.md, "Keyring"), through the whole Worker on
// Miniflare's KV. Ids are unique per test: the namespace is shared by the file.
const kv = (bindings as Env).KEYRING!;
const KEYRING_KEY = generateKeyringKey();
const key = await importKeyringKey(decodeKeyringKey(KEYRING_KEY)!);
const SECRET = "a-keyring-client-secret-of-32-chars!";
let unique = 0;

async function put(id: string, limits: Record<string, unknown> | undefined): Promise<void> {
	await kv.put(recordKey(id), JSON.stringify(await sealedRecord(key, id, [SECRET], limits === undefined ? {} : { limits })));
}

async function send(h: Harness, clientId: string, options: { wait?: boolean } = {}): Promise<Response> {
	const { path, init } = await signedInit({ clientId, secret: SECRET, timestamp: h.clock.now, body: JSON.stringify({ n: unique++ }) }, { clientId, secret: SECRET, timestamp: h.clock.now });
	return h.fetch(new Request(`https://gateway.test${path}`, init), options);
}

function keyringHarness(overrides: Partial<Record<keyof Env, string>> = {}): Harness {
	const h = harness({ KEYRING_KEY, ...overrides }, { upstash: false });
	h.env.KEYRING = kv;
	return h;
}

describe("limits from keyring records", () => {
	it("a record's limits apply to its client, replacing its CLIENT_LIMITS entry as a whole", async () => {
		const id = `kl-own-${crypto.randomUUID().slice(0, 8)}`;
		await put(id, { rpm: 1 });
		const h = keyringHarness({ CLIENT_LIMITS: JSON.stringify({ [id]: { rpd: 1000 } }) });
		const first = await send(h, id);
		expect(first.status).toBe(200);
		expect(first.headers.get("ratelimit-policy")).toBe('"rpm";q=1;w=60');
		const refused = await send(h, id);
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("rate_limited");
	});

	it("without CLIENT_LIMITS at all: a record with limits is limited, one without is not", async () => {
		const limited = `kl-on-${crypto.randomUUID().slice(0, 8)}`;
		const free = `kl-off-${crypto.randomUUID().slice(0, 8)}`;
		await put(limited, { rpm: 1, rpd: 100 });
		await put(free, undefined);
		const h = keyringHarness();
		expect((await send(h, limited)).status).toBe(200);
		expect((await send(h, limited)).status).toBe(429);
		for (let i = 0; i < 3; i++) {
			const answer = await send(h, free);
			expect(answer.status).toBe(200);
			expect(answer.headers.has("ratelimit-policy")).toBe(false);
		}
	});

	it("a record without limits gets CLIENT_LIMITS's; one with limits that break the rules too, and it is logged", async () => {
		const plain = `kl-plain-${crypto.randomUUID().slice(0, 8)}`;
		const broken = `kl-bad-${crypto.randomUUID().slice(0, 8)}`;
		await put(plain, undefined);
		await put(broken, { rpm: "sixty" });
		const h = keyringHarness({ CLIENT_LIMITS: JSON.stringify({ "*": { rpm: 1 } }) });
		for (const id of [plain, broken]) {
			expect((await send(h, id)).status).toBe(200);
			expect((await send(h, id)).status).toBe(429);
		}
		const warned = h.logs.filter((line) => line.message.startsWith("a keyring record's limits break the CLIENT_LIMITS rules"));
		expect(warned).toHaveLength(1);
		expect(JSON.stringify(warned)).not.toContain("sixty");
	});

	it("a record whose only limit is concurrent gets that limit, in place of CLIENT_LIMITS's default", async () => {
		const id = `kl-conc-${crypto.randomUUID().slice(0, 8)}`;
		await put(id, { concurrent: 1 });
		const h = keyringHarness({ CLIENT_LIMITS: JSON.stringify({ "*": { rpm: 1000 } }) });
		// The slot is held while the answer is on its way: read it, then let the release run.
		const answer = await send(h, id, { wait: false });
		expect(answer.status).toBe(200);
		expect(answer.headers.get("ratelimit-policy")).toBe('"concurrent";q=1;qu="concurrent-requests"');
		await answer.text();
		await h.settle();
	});

	it("a client whose id has capitals gets its record's limits", async () => {
		const id = `KL-Caps-${crypto.randomUUID().slice(0, 8)}`;
		await put(id, { rpm: 1 });
		const h = keyringHarness();
		const first = await send(h, id);
		expect(first.status).toBe(200);
		expect(first.headers.get("ratelimit-policy")).toBe('"rpm";q=1;w=60');
		expect((await send(h, id)).status).toBe(429);
	});
});
