import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { EXPOSITION_CONTENT_TYPE } from "../../src/metrics/exposition.ts";
import { testModes } from "../../src/app.ts";
import { errorBody, harness, sampleValue, scrape, signedRequest } from "./harness.ts";

describe("/metrics answers", () => {
	it("401 names the scheme in WWW-Authenticate; 200 is Prometheus text that is never cached", async () => {
		const h = harness();
		const refused = await h.fetch(new Request("https://gateway.test/metrics"));
		expect(refused.status).toBe(401);
		expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
		expect((await errorBody(refused)).code).toBe("unauthorized");
		const wrong = await h.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer not-it" } }));
		expect(wrong.status).toBe(401);
		const ok = await h.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer metrics-token" } }));
		expect(ok.status).toBe(200);
		expect(ok.headers.get("content-type")).toBe(EXPOSITION_CONTENT_TYPE);
		expect(ok.headers.get("cache-control")).toBe("no-store");
	});

	it("outside production without a token, answers anyone", async () => {
		const h = harness({ ENVIRONMENT: "development", METRICS_TOKEN: "" });
		const response = await h.fetch(new Request("https://gateway.test/metrics"));
		expect(response.status).toBe(200);
	});

	it("in production without a token, a 500 config_error that names METRICS_TOKEN", async () => {
		const h = harness({ METRICS_TOKEN: "" });
		const response = await h.fetch(new Request("https://gateway.test/metrics"));
		expect(response.status).toBe(500);
		expect(await errorBody(response)).toEqual({ code: "config_error", detail: "METRICS_TOKEN is required in production." });
	});
});

describe("test modes at their edges", () => {
	const post = (mode: string, body: string) =>
		new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": mode }, body });

	it("counts each answered mode under its own label", async () => {
		const h = harness({ ENVIRONMENT: "test" });
		expect((await h.fetch(post("echo", "{}"))).status).toBe(200);
		expect((await h.fetch(post("echo", "{}"))).status).toBe(200);
		expect((await h.fetch(post("stub", "{}"))).status).toBe(200);
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "bypass", mode: "echo" })).toBe(2);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "bypass", mode: "stub" })).toBe(1);
	});

	it("echoes only a string content; anything else echoes as empty", async () => {
		const h = harness({ ENVIRONMENT: "test" });
		for (const [body, reply] of [
			[JSON.stringify({ messages: [{ content: 5 }] }), "[echo] "],
			[JSON.stringify({ messages: [{ content: "only" }] }), "[echo] only"],
			[JSON.stringify({ messages: [] }), "[echo] "],
			["not json", "[echo] "],
			[JSON.stringify({ messages: [null] }), "[echo] "],
		] as const) {
			const response = await h.fetch(post("echo", body));
			expect(((await response.json()) as { reply: string }).reply, body).toBe(reply);
		}
	});

	it("an unknown mode is not a test mode: it goes through the signature check", async () => {
		const h = harness({ ENVIRONMENT: "test" });
		const response = await h.fetch(post("Stub", "{}"));
		expect(response.status).toBe(401);
		expect((await errorBody(response)).code).toBe("missing_headers");
	});

	it("a test-mode body over MAX_BODY_BYTES is 413 body_too_large, counted as a failure", async () => {
		const h = harness({ ENVIRONMENT: "test", MAX_BODY_BYTES: "8" });
		const response = await h.fetch(post("echo", "123456789"));
		expect(response.status).toBe(413);
		expect((await errorBody(response)).code).toBe("body_too_large");
		const text = await scrape(h);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "fail", mode: "body_too_large" })).toBe(1);
		expect(sampleValue(text, "agent_chat_requests_total", { auth: "bypass", mode: "echo" })).toBe(0);
	});
});

describe("the agent route guard", () => {
	it.each(["PUT", "DELETE", "PATCH", "OPTIONS"])("405 with Allow: GET, POST for %s, on both paths", async (method) => {
		const h = harness();
		for (const path of ["/agent/chat", "/api/agent/chat"]) {
			const response = await h.fetch(new Request(`https://gateway.test${path}`, { method }));
			expect(response.status).toBe(405);
			expect(response.headers.get("allow")).toBe("GET, POST");
			expect((await errorBody(response)).code).toBe("method_not_allowed");
		}
	});

	it("404 for /agent and /api/agent themselves; the /api alias reaches the origin", async () => {
		const h = harness();
		for (const path of ["/agent", "/api/agent", "/agentx/chat"]) {
			const response = await h.fetch(new Request(`https://gateway.test${path}`, { method: "POST", body: "{}" }));
			expect(response.status, path).toBe(404);
			expect((await errorBody(response)).code).toBe("not_found");
		}
		const aliased = await h.fetch(await signedRequest({ urlPath: "/api/agent/chat" }));
		expect(aliased.status).toBe(200);
		expect(h.origin.requests.map((request) => new URL(request.url).pathname)).toEqual(["/agent/chat"]);
	});

	it("testModes() refuses a maxBodyBytes that is not positive when it is built; the smallest it takes is enforced to the byte", async () => {
		const outcomes: string[] = [];
		const events = { outcome: (auth: string, mode: string) => void outcomes.push(`${auth}/${mode}`) };
		expect(() => testModes({ allowed: true, maxBodyBytes: 0, events })).toThrow(/maxBodyBytes/);
		expect(() => testModes({ allowed: true, maxBodyBytes: -1, events })).toThrow(/maxBodyBytes/);
		expect(() => testModes({ allowed: true, maxBodyBytes: Number.NaN, events })).toThrow(/maxBodyBytes/);
		const app = new Hono();
		app.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("unexpected", { status: 599 })));
		app.post("/agent/chat", testModes({ allowed: true, maxBodyBytes: 1, events }), (c) => c.text("not a test mode"));
		const send = (body: string, mode = "echo") => app.request("/agent/chat", { method: "POST", headers: { "X-Test-Mode": mode }, body });
		const one = await send("1");
		expect(one.status).toBe(200);
		expect(one.headers.get("x-auth-mode")).toBe("bypass");
		expect(((await one.json()) as { reply: string }).reply).toBe("[echo] ");
		const two = await send("12");
		expect(two.status).toBe(413);
		expect((await errorBody(two)).code).toBe("body_too_large");
		// Without a test mode the request goes on to the next handler, its body unread.
		expect(await (await send("12345", "")).text()).toBe("not a test mode");
		expect(outcomes).toEqual(["bypass/echo", "fail/body_too_large"]);
	});

	it("a test mode whose body breaks before its end is 400 invalid_body, counted as such", async () => {
		const outcomes: string[] = [];
		const events = { outcome: (auth: string, mode: string) => void outcomes.push(`${auth}/${mode}`) };
		const app = new Hono();
		app.onError((error) => (error instanceof HTTPException ? error.getResponse() : new Response("unexpected", { status: 599 })));
		app.post("/agent/chat", testModes({ allowed: true, maxBodyBytes: 1_000, events }), (c) => c.text("not a test mode"));
		const broken = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(new TextEncoder().encode("{"));
				controller.error(new Error("client went away"));
			},
		});
		const answer = await app.request("/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: broken, duplex: "half" } as RequestInit);
		expect(answer.status).toBe(400);
		expect((await errorBody(answer)).code).toBe("invalid_body");
		expect(outcomes).toEqual(["fail/invalid_body"]);
	});
});
