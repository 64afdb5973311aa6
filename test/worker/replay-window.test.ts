import { describe, expect, it } from "vitest";
import { signRequest } from "../../src/client/sign.ts";
import { CLIENT_ID, harness, SECRET, signedRequest } from "./harness.ts";

// docs/design.md, "Replay protection": a key outlives the last instant its timestamp is accepted.
const NOW = 1_763_000_000_000;
const WINDOW_MS = 300_000;

async function v2Request(createdMs: number): Promise<Request> {
	const body = '{"messages":[{"role":"user","content":"window"}]}';
	const signed = await signRequest({ scheme: "v2", clientId: CLIENT_ID, secret: SECRET, created: createdMs / 1000, nonce: "window-nonce-0001", method: "POST", path: "/agent/chat", body });
	return new Request("https://gateway.test/agent/chat", { method: "POST", headers: { ...(signed.headers as Record<string, string>), "Content-Type": "application/json" }, body: signed.body });
}

const schemes = { v1: (at: number) => signedRequest({}, at), v2: v2Request };
const stores = {
	// No Upstash: the memory store alone.
	"in memory": { upstash: false, failing: false },
	// Upstash failing: claimed in memory by the fallback.
	"during a fallback": { upstash: true, failing: true },
	// Upstash: the key's expiry as sent with the SET.
	"in Upstash": { upstash: true, failing: false },
} as const;

describe("the window's last millisecond", () => {
	for (const [scheme, build] of Object.entries(schemes)) {
		for (const [where, store] of Object.entries(stores)) {
			it(`${scheme} ${where}: a copy at exactly timestamp + HMAC_MAX_SKEW_MS is a replay (409); one millisecond later, a skew (408)`, async () => {
				// A short TTL, so the window alone decides how long the key lives.
				const h = harness({ HMAC_MAX_SKEW_MS: String(WINDOW_MS), REDIS_REPLAY_TTL: "60" }, { upstash: store.upstash });
				if (store.failing) h.redis.answer = () => Promise.reject(new TypeError("fetch failed"));
				const request = await build(NOW);
				expect((await h.fetch(request.clone())).status).toBe(200);
				if (store.upstash && !store.failing) {
					// Upstash keeps the key for the window and one millisecond more, from the claim.
					expect(h.redis.calls[0]?.opts).toEqual({ nx: true, px: WINDOW_MS + 1 });
					return;
				}
				h.clock.now = NOW + WINDOW_MS;
				expect((await h.fetch(request.clone())).status).toBe(409);
				h.clock.now = NOW + WINDOW_MS + 1;
				expect((await h.fetch(request.clone())).status).toBe(408);
				expect(h.origin.requests).toHaveLength(1);
			});
		}
	}
});
