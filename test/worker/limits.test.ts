import { describe, expect, it } from "vitest";
import { limitKeys } from "../../src/claim/keys.ts";
import { errorBody, harness, sampleValue, scrape, signedRequest, type Harness } from "./harness.ts";

const LIMITS = (entries: Record<string, object>) => ({ CLIENT_LIMITS: JSON.stringify(entries) });
const body = (n: number) => JSON.stringify({ messages: [{ role: "user", content: `request ${n}` }] });
/** A fresh signed request at the harness's clock (each body distinct: each its own replay key). */
let counter = 0;
const fresh = (h: Harness, init: { clientId?: string } = {}) => signedRequest({ body: body(++counter), ...init }, h.clock.now);

/** The origin answers with one NDJSON event and a stream left open; the function returned ends the latest one. */
function streamUntilFinished(h: Harness): () => void {
	let close = () => {};
	h.origin.respond = () =>
		new Response(
			new ReadableStream({
				start(controller) {
					controller.enqueue(new TextEncoder().encode('{"event":1}\n'));
					close = () => controller.close();
				},
			}),
			{ headers: { "Content-Type": "application/x-ndjson" } },
		);
	return () => close();
}

async function metric(h: Harness, name: string, labels: Record<string, string>): Promise<number> {
	return sampleValue(await scrape(h), name, labels);
}

describe("per-client limits, the whole Worker in workerd (fake Upstash running a model of the script)", () => {
	it("without CLIENT_LIMITS nothing changes: one SET NX per request, no script, no RateLimit fields", async () => {
		const h = harness();
		for (let i = 0; i < 3; i++) {
			const response = await h.fetch(await fresh(h));
			expect(response.status).toBe(200);
			expect(response.headers.has("ratelimit-policy")).toBe(false);
			expect(response.headers.has("ratelimit")).toBe(false);
		}
		expect(h.redis.calls).toHaveLength(3);
		expect(h.redis.scriptCalls).toEqual([]);
	});

	it("every limit's refusal series is there at 0 before the first request, without a client label", async () => {
		const h = harness(LIMITS({ "*": { rpm: 1 } }));
		const exposition = await scrape(h);
		const limits = ["rpm", "rpd", "concurrent", "daily_tokens", "monthly_tokens"];
		for (const limit of limits) expect(exposition).toMatch(new RegExp(`^agent_limit_refusals_total\\{client="",limit="${limit}",[^}]*\\} 0$`, "m"));
		expect(exposition.match(/^agent_limit_refusals_total\{/gm)).toHaveLength(limits.length);
	});

	it("rpm: one script command per request (EVAL first, then EVALSHA), the fields on accepted answers, then 429 with Retry-After", async () => {
		const h = harness(LIMITS({ "svc-test": { rpm: 2 } }));
		const first = await h.fetch(await fresh(h));
		expect(first.status).toBe(200);
		expect(first.headers.get("ratelimit-policy")).toBe('"rpm";q=2;w=60');
		expect(first.headers.get("ratelimit")).toBe('"rpm";r=1;t=60');
		expect(h.redis.scriptCalls).toEqual(["eval"]);
		h.clock.now += 15_000;
		const second = await h.fetch(await fresh(h));
		expect(second.headers.get("ratelimit")).toBe('"rpm";r=0;t=45');
		expect(h.redis.scriptCalls).toEqual(["eval", "evalsha"]);
		expect(h.redis.calls).toEqual([]);

		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("rate_limited");
		expect(refused.headers.get("retry-after")).toBe("45");
		expect(refused.headers.get("ratelimit-policy")).toBe('"rpm";q=2;w=60');
		expect(refused.headers.get("ratelimit")).toBe('"rpm";r=0;t=45');
		expect(h.origin.requests).toHaveLength(2);
		expect(await metric(h, "agent_limit_refusals_total", { limit: "rpm", client: "" })).toBe(1);
		expect(await metric(h, "agent_chat_requests_total", { auth: "fail", mode: "rate_limited" })).toBe(1);
		expect(await metric(h, "agent_replay_store_calls_total", { store: "upstash", outcome: "limited" })).toBe(1);
	});

	it("a refused request's bytes are dead: its replay key is claimed in Upstash (in the same command), so after Retry-After they are a replay; nothing was spent", async () => {
		const h = harness(LIMITS({ "*": { rpm: 1 } }));
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		const refused = await fresh(h);
		expect((await h.fetch(refused.clone())).status).toBe(429);
		expect(h.redis.scriptCalls).toEqual(["eval", "evalsha"]);
		expect(h.redis.calls).toEqual([]);
		// Upstash holds the key: another isolate (or whoever copied the bytes) finds it there.
		const key = `hmac:replay:${refused.headers.get("x-signature")}`;
		expect(await h.redis.set(key, "another-isolate", { nx: true, px: 1_000 })).toBeNull();
		h.clock.now += 60_000;
		const again = await h.fetch(refused.clone());
		expect(again.status).toBe(409);
		expect((await errorBody(again)).code).toBe("replay");
		// The refusal spent nothing: the next minute's one request is there.
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		expect(h.origin.requests).toHaveLength(2);
	});

	it("an id's entry replaces the default as a whole; {} exempts; a listed label names the client in the metric", async () => {
		const h = harness(LIMITS({ "*": { rpm: 1 }, "svc-test": { rpd: 5, label: true }, exempt: {} }));
		for (let i = 0; i < 3; i++) expect((await h.fetch(await fresh(h))).status).toBe(200);
		const exempt = await h.fetch(await fresh(h, { clientId: "exempt" }));
		expect(exempt.status).toBe(200);
		expect(exempt.headers.has("ratelimit-policy")).toBe(false);
		expect((await h.fetch(await fresh(h, { clientId: "exempt" }))).status).toBe(200);
		expect((await h.fetch(await fresh(h, { clientId: "other" }))).status).toBe(200);
		expect((await h.fetch(await fresh(h, { clientId: "other" }))).status).toBe(429);
		expect(await metric(h, "agent_limit_refusals_total", { limit: "rpm", client: "" })).toBe(1);
		// The labelled client's series is there from the start (primed), at 0.
		expect(await metric(h, "agent_limit_refusals_total", { limit: "rpd", client: "svc-test" })).toBe(0);
		const exposition = await scrape(h);
		expect(exposition).not.toContain('client="other"');
		expect(exposition).not.toContain('client="exempt"');
	});

	it("rpd: 429 daily_quota_exhausted until 00:00 UTC, then a new day", async () => {
		const h = harness(LIMITS({ "svc-test": { rpd: 1, label: true } }));
		h.clock.now = Date.UTC(2026, 11, 2, 23, 59, 0);
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("daily_quota_exhausted");
		expect(refused.headers.get("retry-after")).toBe("60");
		expect(await metric(h, "agent_limit_refusals_total", { limit: "rpd", client: "svc-test" })).toBe(1);
		h.clock.now = Date.UTC(2026, 11, 3);
		expect((await h.fetch(await fresh(h))).status).toBe(200);
	});

	it("concurrent: a streamed answer holds its slot until its last byte; then one ZREM frees it", async () => {
		const h = harness(LIMITS({ "svc-test": { concurrent: 1 } }));
		const finish = streamUntilFinished(h);
		const streaming = await h.fetch(await fresh(h), { wait: false });
		expect(streaming.status).toBe(200);
		expect(streaming.headers.get("ratelimit")).toBe('"concurrent";r=0');

		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("too_many_in_flight");
		expect(refused.headers.get("retry-after")).toBe("1");
		expect(h.redis.scriptCalls.filter((call) => call === "zrem")).toHaveLength(0);

		finish();
		expect(await streaming.text()).toBe('{"event":1}\n');
		await h.settle();
		expect(h.redis.scriptCalls.filter((call) => call === "zrem")).toHaveLength(1);
		h.origin.respond = () => new Response('{"reply":"ok"}', { headers: { "Content-Length": "14" } });
		// The slot is held while the body is on its way (the background pipe ends with it): read, then settle.
		const after = await h.fetch(await fresh(h), { wait: false });
		expect(after.status).toBe(200);
		expect(after.headers.get("content-length")).toBe("14");
		expect(await after.json()).toEqual({ reply: "ok" });
		await h.settle();
		expect(h.redis.scriptCalls.filter((call) => call === "zrem")).toHaveLength(2);
	});

	it("a slot whose release never comes (an isolate that died) is freed when its lease ends: ORIGIN_TIMEOUT_MS + ORIGIN_STREAM_MAX_MS", async () => {
		const h = harness({ ...LIMITS({ "svc-test": { concurrent: 1 } }), ORIGIN_TIMEOUT_MS: "1000", ORIGIN_STREAM_MAX_MS: "60000" });
		h.origin.respond = () => new Response(new ReadableStream({ start: () => {} }));
		const held = await h.fetch(await fresh(h), { wait: false });
		expect(held.status).toBe(200);
		const lease = 1_000 + 60_000;
		h.clock.now += lease - 1;
		expect((await h.fetch(await fresh(h))).status).toBe(429);
		h.clock.now += 1;
		h.origin.respond = () => Response.json({ reply: "ok" });
		const after = await h.fetch(await fresh(h), { wait: false });
		expect(after.status).toBe(200);
		// The dead slot is gone; the one held is the new request's.
		const { inFlight } = limitKeys("hmac:replay:", "svc-test", "");
		expect(h.redis.script.held(inFlight)).toBe(1);
		await after.arrayBuffer();
		await held.body!.cancel();
		await h.settle();
		expect(h.redis.script.held(inFlight)).toBe(0);
	});

	it("an EVALSHA that timed out but landed is confirmed by a second run: claimed once, its quota spent once", async () => {
		const h = harness({ ...LIMITS({ "svc-test": { rpm: 2 } }), REPLAY_BREAKER_FAILURES: "100" });
		await h.fetch(await fresh(h));
		let lost = true;
		// The model runs the script, then its answer is lost as a timeout (once).
		const original = h.redis.evalsha.bind(h.redis);
		h.redis.evalsha = async (sha1, keys, args) => {
			const answer = await original(sha1, keys, args);
			if (lost) {
				lost = false;
				throw Object.assign(new Error("took too long"), { name: "TimeoutError" });
			}
			return answer;
		};
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		expect(h.redis.scriptCalls).toEqual(["eval", "evalsha", "evalsha"]);
		// Two accepted of rpm 2: the confirmed claim spent one unit, not two, and was not counted as a replay.
		expect((await h.fetch(await fresh(h))).status).toBe(429);
		expect(await metric(h, "agent_chat_replay_attempts_total", {})).toBe(0);
	});
});

describe("per-client limits when Upstash fails, or is not there", () => {
	it("REPLAY_FAIL_MODE=memory: each isolate enforces them alone, degraded, and says so in /healthz and the log", async () => {
		const h = harness(LIMITS({ "svc-test": { rpm: 2 } }));
		h.redis.scriptAnswer = async () => {
			throw new Error("Upstash down");
		};
		const statuses = [];
		for (let i = 0; i < 3; i++) statuses.push((await h.fetch(await fresh(h))).status);
		expect(statuses).toEqual([200, 200, 429]);
		const refused = await h.fetch(await fresh(h));
		expect(refused.headers.get("ratelimit")).toBe('"rpm";r=0;t=60');
		const health = await h.fetch(new Request("https://gateway.test/healthz", { headers: { Authorization: "Bearer metrics-token" } }));
		expect(await health.json()).toMatchObject({ status: "degraded", limits: { enforced: "isolate" } });
		expect(h.logs.find((line) => line.message === "replay store unavailable, falling back to memory")?.fields).toMatchObject({
			limits: "enforced per isolate",
		});
		expect(await metric(h, "agent_replay_store_calls_total", { store: "memory", outcome: "limited" })).toBe(2);
	});

	it("a release Upstash did not take is kept and sent again once it answers: the slot does not outlive its request by its lease", async () => {
		const h = harness(LIMITS({ "svc-test": { concurrent: 1 } }));
		const finish = streamUntilFinished(h);
		const streaming = await h.fetch(await fresh(h), { wait: false });
		expect(streaming.status).toBe(200);
		// Upstash fails while the stream runs: the claims fall back to memory, and the release at its end fails.
		h.redis.scriptAnswer = async () => {
			throw new Error("Upstash down");
		};
		h.origin.respond = () => Response.json({ reply: "ok" });
		const during = await h.fetch(await fresh(h), { wait: false });
		expect(during.status).toBe(200);
		await during.arrayBuffer();
		finish();
		await streaming.text();
		await h.settle();
		const { inFlight } = limitKeys("hmac:replay:", "svc-test", "");
		expect(h.redis.script.held(inFlight)).toBe(1);
		expect(h.logs.filter((line) => line.message.startsWith("a concurrent slot was not released"))).toHaveLength(1);

		// Upstash answers again (the lease has 16 minutes left): the first claim it answers sends the release in its background.
		h.redis.scriptAnswer = null;
		h.clock.now += 2_000;
		const statuses: number[] = [];
		for (let i = 0; i < 2; i++) {
			const response = await h.fetch(await fresh(h), { wait: false });
			statuses.push(response.status);
			await response.arrayBuffer();
			await h.settle();
		}
		expect(h.redis.script.held(inFlight)).toBe(0);
		// At most the one claim that raced the release is refused, with its honest Retry-After of 1 s; then the slot is free.
		expect(statuses).toEqual([429, 200]);
		// The failed release, the one sent again, the slot the failed claim's run may have taken (given back), and the accepted request's own.
		expect(h.redis.scriptCalls.filter((call) => call === "zrem")).toHaveLength(4);
	});

	it.each([[{ rpd: 3, rpm: 100 }], [{ rpd: 3 }]])("quota spent in memory during an outage is written back with the claims: an outage does not double a client's day (%j)", async (limits: { rpd: number; rpm?: number }) => {
		const h = harness({ ...LIMITS({ "svc-test": limits }), REPLAY_BREAKER_FAILURES: "100" });
		h.clock.now = Date.UTC(2026, 11, 2, 12, 0, 0);
		h.redis.scriptAnswer = async () => {
			throw new Error("Upstash down");
		};
		const inMemory = [await fresh(h), await fresh(h)];
		for (const request of inMemory) expect((await h.fetch(request.clone())).status).toBe(200);
		h.redis.scriptAnswer = null;
		h.clock.now += 1_000;
		// Upstash has spent none of the day: it takes this one, and the two memory claims are written back with their spend.
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		const keys = limitKeys("hmac:replay:", "svc-test", "2026-12-02");
		expect(h.redis.script.count(keys.rpd)).toBe(3);
		expect(h.redis.script.count(keys.rpm)).toBe(limits.rpm === undefined ? 0 : 3);
		const refused = await h.fetch(await fresh(h));
		expect(refused.status).toBe(429);
		expect((await errorBody(refused)).code).toBe("daily_quota_exhausted");
		// One write-back command each (the script, not a SET): the key and its spend together.
		expect(h.redis.calls).toEqual([]);
		// Both keys are Upstash's now.
		for (const request of inMemory) expect(await h.redis.set(`hmac:replay:${request.headers.get("x-signature")}`, "x", { nx: true, px: 1 })).toBeNull();
	});

	it("REPLAY_FAIL_MODE=closed: 503, never 200 and never 429", async () => {
		const h = harness({ ...LIMITS({ "svc-test": { rpm: 1 } }), REPLAY_FAIL_MODE: "closed" });
		h.redis.scriptAnswer = async () => {
			throw new Error("Upstash down");
		};
		for (let i = 0; i < 3; i++) {
			const response = await h.fetch(await fresh(h));
			expect(response.status).toBe(503);
			expect((await errorBody(response)).code).toBe("replay_store_unavailable");
		}
	});

	it("no Upstash at all (development): the memory limiter is the limiter", async () => {
		const h = harness({ ...LIMITS({ "*": { rpm: 1 } }), ENVIRONMENT: "development" }, { upstash: false });
		expect((await h.fetch(await fresh(h))).status).toBe(200);
		expect((await h.fetch(await fresh(h))).status).toBe(429);
		const health = await h.fetch(new Request("https://gateway.test/healthz", { headers: { Authorization: "Bearer metrics-token" } }));
		expect(await health.json()).toMatchObject({ status: "ok", limits: { enforced: "isolate" } });
	});

	it("with Upstash healthy, /healthz says the limits are shared", async () => {
		const h = harness(LIMITS({ "*": { rpm: 1 } }));
		await h.fetch(await fresh(h));
		const health = await h.fetch(new Request("https://gateway.test/healthz", { headers: { Authorization: "Bearer metrics-token" } }));
		expect(await health.json()).toMatchObject({ status: "ok", limits: { enforced: "shared" } });
	});
});
