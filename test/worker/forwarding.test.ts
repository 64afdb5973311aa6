import { describe, expect, it } from "vitest";
import { errorBody, harness, ORIGIN, sampleValue, scrape, signedRequest } from "./harness.ts";

describe("forwarding to the origin", () => {
	it("sends the path and query by concatenation, the same body bytes, and the gateway's own headers", async () => {
		const h = harness();
		const body = '{"messages":[{"role":"user","content":"caf\\u00e9 ☃"}]}  ';
		const request = await signedRequest({
			body,
			query: "?month=2026-11&x=%2e%2e",
			headers: {
				"X-Auth-Mode": "forged",
				"X-Gateway-Token": "forged",
				"X-Test-Mode": "stub",
				"X-Forwarded-For": "6.6.6.6",
				"X-Forwarded-Host": "evil.test",
				"CF-Connecting-IP": "203.0.113.7",
				Connection: "close, X-Drop-Me",
				"X-Drop-Me": "1",
				"Keep-Alive": "timeout=5",
			},
		});
		const response = await h.fetch(request);
		expect(response.status).toBe(200);
		expect(response.headers.get("x-auth-mode")).toBe("hmac");
		const [sent] = h.origin.requests;
		expect(sent?.url).toBe(`${ORIGIN}/agent/chat?month=2026-11&x=%2e%2e`);
		expect(sent?.method).toBe("POST");
		expect(new TextDecoder().decode(sent?.body)).toBe(body);
		const headers = sent!.headers;
		expect(headers.get("x-auth-mode")).toBe("hmac");
		expect(headers.get("x-gateway-token")).toBe("origin-token");
		expect(headers.get("x-test-mode")).toBeNull();
		expect(headers.get("x-forwarded-for")).toBe("203.0.113.7");
		expect(headers.get("x-forwarded-host")).toBeNull();
		expect(headers.get("x-drop-me")).toBeNull();
		expect(headers.get("keep-alive")).toBeNull();
		expect(headers.get("x-client-id")).toBe(request.headers.get("x-client-id"));
		expect(headers.get("x-timestamp")).toBe(request.headers.get("x-timestamp"));
		expect(headers.get("x-signature")).toBe(request.headers.get("x-signature"));
	});

	it("does not send X-Gateway-Token when ORIGIN_TOKEN is unset, not even a client's own, and warns once in production", async () => {
		const h = harness({ ORIGIN_TOKEN: "" });
		await h.fetch(await signedRequest({ headers: { "X-Gateway-Token": "forged-by-client" } }));
		await h.fetch(await signedRequest({ timestamp: 1_763_000_000_001 }));
		expect(h.origin.requests[0]?.headers.get("x-gateway-token")).toBeNull();
		expect(h.logs.filter((line) => line.message.startsWith("ORIGIN_TOKEN is not set"))).toHaveLength(1);
	});

	it("keeps ORIGIN_URL's own path prefix and never resolves dot segments", async () => {
		const h = harness({ ORIGIN_URL: "https://origin.test/base/" });
		await h.fetch(await signedRequest({ path: "/agent/v1/chat" }));
		expect(h.origin.requests[0]?.url).toBe("https://origin.test/base/agent/v1/chat");
	});

	it("passes the origin's status and headers back, without hop-by-hop ones", async () => {
		const h = harness();
		h.origin.respond = () =>
			new Response('{"detail":"nope"}', { status: 422, headers: { "Content-Type": "application/json", "X-Origin": "1", Connection: "keep-alive" } });
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(422);
		expect(response.headers.get("x-origin")).toBe("1");
		expect(response.headers.get("connection")).toBeNull();
		expect(await response.text()).toBe('{"detail":"nope"}');
	});

	it("502 origin_unreachable when the origin cannot be reached", async () => {
		const h = harness();
		h.origin.respond = () => {
			throw new TypeError("Network connection lost.");
		};
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(502);
		expect((await errorBody(response)).code).toBe("origin_unreachable");
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "unreachable" })).toBe(1);
	});

	it("502 origin_unreachable, never a 500, when the origin answers a status a Response cannot carry (101, 600, 999); 599 passes", async () => {
		const h = harness();
		let status = 0;
		// The runtime's fetch hands such a status on; `new Response` refuses it, so the fake is a look-alike.
		h.origin.respond = () => ({ status, statusText: "", headers: new Headers({ "Content-Type": "text/plain" }), body: null }) as unknown as Response;
		const answers: [number, number, string | undefined][] = [];
		for (const [i, sent] of [101, 199, 600, 999].entries()) {
			status = sent;
			const response = await h.fetch(await signedRequest({ timestamp: 1_763_000_000_000 + i }));
			answers.push([sent, response.status, (await errorBody(response)).code]);
		}
		expect(answers).toEqual([
			[101, 502, "origin_unreachable"],
			[199, 502, "origin_unreachable"],
			[600, 502, "origin_unreachable"],
			[999, 502, "origin_unreachable"],
		]);
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "unreachable" })).toBe(4);
		h.origin.respond = () => new Response("late", { status: 599 });
		const passed = await h.fetch(await signedRequest({ timestamp: 1_763_000_000_010 }));
		expect(passed.status).toBe(599);
		expect(await passed.text()).toBe("late");
	});

	it("504 origin_timeout when the headers do not come within ORIGIN_TIMEOUT_MS; the origin's late answer is cancelled, never passed on", async () => {
		const h = harness({ ORIGIN_TIMEOUT_MS: "50" });
		let cancelled = false;
		let answered!: () => void;
		const lateAnswer = new Promise<void>((resolve) => (answered = resolve));
		h.origin.respond = () =>
			new Promise((resolve) =>
				setTimeout(() => {
					resolve(new Response(new ReadableStream({ pull: (controller) => controller.enqueue(new Uint8Array(1)), cancel: () => void (cancelled = true) })));
					answered();
				}, 150),
			);
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(504);
		expect((await errorBody(response)).code).toBe("origin_timeout");
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "timeout" })).toBe(1);
		await lateAnswer;
		await expect.poll(() => cancelled).toBe(true);
	});

	it("with a deadline shorter than ORIGIN_TIMEOUT_MS, the deadline aborts the call: 504 origin_timeout", async () => {
		const h = harness({ ORIGIN_TIMEOUT_MS: "5000", ORIGIN_STREAM_MAX_MS: "50" });
		let aborted = false;
		h.origin.respond = (request) =>
			new Promise((_, reject) => {
				request.signal.addEventListener("abort", () => {
					aborted = true;
					reject(request.signal.reason);
				});
			});
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(504);
		expect((await errorBody(response)).code).toBe("origin_timeout");
		expect(aborted).toBe(true);
	});

	it("streams: the first NDJSON event reaches the client before the origin finishes", async () => {
		const h = harness();
		let finishOrigin!: () => void;
		const originDone = new Promise<void>((resolve) => (finishOrigin = resolve));
		let originFinished = false;
		h.origin.respond = () => {
			const encoder = new TextEncoder();
			const body = new ReadableStream<Uint8Array>({
				async start(controller) {
					controller.enqueue(encoder.encode('{"type":"start"}\n'));
					await originDone;
					controller.enqueue(encoder.encode('{"type":"done"}\n'));
					originFinished = true;
					controller.close();
				},
			});
			return new Response(body, { headers: { "Content-Type": "application/x-ndjson" } });
		};
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		expect(response.status).toBe(200);
		const reader = response.body!.getReader();
		const first = await reader.read();
		expect(new TextDecoder().decode(first.value)).toBe('{"type":"start"}\n');
		expect(originFinished).toBe(false);
		finishOrigin();
		const rest = await new Response(new ReadableStream({ pull: async (c) => { const r = await reader.read(); r.done ? c.close() : c.enqueue(r.value); } })).text();
		expect(rest).toBe('{"type":"done"}\n');
		expect(originFinished).toBe(true);
	});

	it("ends a streamed answer when the origin goes quiet for ORIGIN_IDLE_MS, and counts the cut", async () => {
		const h = harness({ ORIGIN_IDLE_MS: "50" });
		let cancelled = false;
		h.origin.respond = () =>
			new Response(
				new ReadableStream<Uint8Array>({
					start(controller) {
						controller.enqueue(new TextEncoder().encode('{"type":"start"}\n'));
					},
					cancel() {
						cancelled = true;
					},
				}),
			);
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		expect(await response.text()).toBe('{"type":"start"}\n');
		expect(cancelled).toBe(true);
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "stream_cut" })).toBe(1);
	});

	it("forwards a chunked body under the limit whole", async () => {
		const h = harness({ MAX_BODY_BYTES: "4096" });
		const body = JSON.stringify({ messages: [{ role: "user", content: "z".repeat(3000) }] });
		const signed = await signedRequest({ body });
		const bytes = new TextEncoder().encode(body);
		let offset = 0;
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (offset >= bytes.length) return controller.close();
				controller.enqueue(bytes.slice(offset, offset + 700));
				offset += 700;
			},
		});
		const response = await h.fetch(new Request(signed.url, { method: "POST", headers: signed.headers, body: stream }));
		expect(response.status).toBe(200);
		expect(new TextDecoder().decode(h.origin.requests[0]?.body)).toBe(body);
	});

	it("strips headers a client could use to spoof its address or change the request's meaning behind the gateway", async () => {
		const h = harness();
		const spoofing = {
			Forwarded: "for=6.6.6.6;host=evil.test",
			"X-Real-IP": "6.6.6.6",
			"True-Client-IP": "6.6.6.6",
			"X-HTTP-Method-Override": "DELETE",
			"X-HTTP-Method": "DELETE",
			"X-Method-Override": "DELETE",
			"X-Original-URL": "/admin",
			"X-Rewrite-URL": "/admin",
		};
		const response = await h.fetch(await signedRequest({ headers: { ...spoofing, "X-Request-Id": "1" } }));
		expect(response.status).toBe(200);
		const headers = h.origin.requests[0]!.headers;
		for (const name of Object.keys(spoofing)) expect(headers.get(name), name).toBeNull();
		expect(headers.get("x-request-id")).toBe("1");
	});

	it("a client's Connection header never removes the signed headers or Content-Type on the way to the origin", async () => {
		const h = harness();
		const request = await signedRequest({
			headers: { Connection: "X-Client-Id, x-timestamp,X-SIGNATURE , Content-Type, Accept, X-Hop", Accept: "application/x-ndjson", "X-Hop": "1" },
		});
		expect((await h.fetch(request)).status).toBe(200);
		const headers = h.origin.requests[0]!.headers;
		expect(headers.get("x-client-id")).toBe(request.headers.get("x-client-id"));
		expect(headers.get("x-timestamp")).toBe(request.headers.get("x-timestamp"));
		expect(headers.get("x-signature")).toBe(request.headers.get("x-signature"));
		expect(headers.get("content-type")).toBe("application/json");
		expect(headers.get("accept")).toBe("application/x-ndjson");
		// A header that is not end-to-end is still dropped when the client names it.
		expect(headers.get("x-hop")).toBeNull();
		expect(headers.get("connection")).toBeNull();
	});

	it("an origin redirect is passed back, not followed (the fake follows one unless told `redirect: \"manual\"`, as fetch does)", async () => {
		const h = harness();
		h.origin.respond = async function following(request): Promise<Response> {
			const answer =
				new URL(request.url).pathname === "/agent/chat"
					? new Response(null, { status: 302, headers: { Location: `${ORIGIN}/agent/chat/next?x=1` } })
					: Response.json({ followed: true });
			const location = answer.headers.get("location");
			if (request.redirect === "manual" || location === null) return answer;
			return following(new Request(new URL(location, request.url), { method: "GET" }));
		};
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(302);
		expect(response.headers.get("location")).toBe("/agent/chat/next?x=1");
		expect(await response.text()).toBe("");
		expect(h.origin.requests).toHaveLength(1);
	});

	it.each([
		["http://origin.test/agent/chat/?a=1#f", "/agent/chat/?a=1#f"],
		["https://ORIGIN.test:8443/agent/chat/", "/agent/chat/"],
		["//origin.test/agent/chat/", "/agent/chat/"],
		["/\\origin.test/agent/chat/", "/agent/chat/"],
		["/agent/chat/", "/agent/chat/"],
		["https://login.example.com/authorize?x=1", "https://login.example.com/authorize?x=1"],
		["chat/", "chat/"],
	])("a Location %j on the origin's host is rewritten to a gateway path: %j", async (location, expected) => {
		const h = harness();
		h.origin.respond = () => new Response(null, { status: 307, headers: { Location: location } });
		const response = await h.fetch(await signedRequest());
		expect(response.headers.get("location")).toBe(expected);
		expect(response.headers.get("location")).not.toContain("origin.test");
	});

	it("a Location under ORIGIN_URL's own path prefix loses that prefix", async () => {
		const h = harness({ ORIGIN_URL: "https://origin.test/base" });
		h.origin.respond = () => new Response(null, { status: 307, headers: { Location: "https://origin.test/base/agent/chat/" } });
		const response = await h.fetch(await signedRequest());
		expect(response.headers.get("location")).toBe("/agent/chat/");
	});

	it("a 502 logs the origin's host and the error's kind, never a secret or the path, and is rate limited", async () => {
		// The runtime's error may quote the URL it was given, credentials and all: none of it is logged.
		const h = harness({ ORIGIN_URL: "https://origin.test:8443/base" });
		h.origin.respond = () => {
			throw new TypeError("connect ECONNREFUSED https://user:pa55word@origin.test:8443/base/agent/chat");
		};
		expect((await h.fetch(await signedRequest())).status).toBe(502);
		expect((await h.fetch(await signedRequest({ timestamp: 1_763_000_000_001 }))).status).toBe(502);
		const logged = h.logs.filter((line) => line.message === "origin unreachable");
		expect(logged).toEqual([{ level: "error", message: "origin unreachable", fields: { origin_host: "origin.test:8443", error: "TypeError", suppressed: 0 } }]);
		expect(JSON.stringify(h.logs)).not.toContain("pa55word");
	});

	it("passes an answer with a Content-Length through as the origin sent it: status, body bytes, headers but hop-by-hop ones", async () => {
		const h = harness();
		const bytes = new Uint8Array(70_000).map((_, i) => i % 251);
		let originBody: ReadableStream | null = null;
		h.origin.respond = () => {
			const answer = new Response(bytes, {
				status: 201,
				statusText: "Made",
				headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length), "X-Origin": "1", Connection: "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5" },
			});
			originBody = answer.body;
			return answer;
		};
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(201);
		expect(response.statusText).toBe("Made");
		expect([...response.headers].sort()).toEqual([
			["content-length", String(bytes.length)],
			["content-type", "application/octet-stream"],
			["x-auth-mode", "hmac"],
			["x-origin", "1"],
		]);
		// The origin's own stream, not a copy pumped through JavaScript.
		expect(response.body).toBe(originBody);
		expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
	});

	it("does not pass an encoded answer's Content-Length on: the runtime may decode it, and the length would lie", async () => {
		const h = harness();
		const gzipped = new Uint8Array(await new Response(new Response("hello").body!.pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
		h.origin.respond = () =>
			new Response(gzipped, { headers: { "Content-Type": "text/plain", "Content-Encoding": "gzip", "Content-Length": String(gzipped.length) } });
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(200);
		expect(response.headers.get("content-encoding")).toBe("gzip");
		expect(response.headers.has("content-length")).toBe(false);
		await response.body?.cancel();
	});

	it("keeps a streamed answer whose chunks come 30 ms apart whole with ORIGIN_IDLE_MS=80: the idle limit is per gap, not a deadline", async () => {
		const h = harness({ ORIGIN_IDLE_MS: "80" });
		const events = Array.from({ length: 8 }, (_, i) => `{"type":"token","n":${i}}\n`);
		h.origin.respond = () => new Response(paced(events, 30), { headers: { "Content-Type": "application/x-ndjson" } });
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		expect(await response.text()).toBe(events.join(""));
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "stream_cut" })).toBe(0);
	});

	it("cuts a streamed answer that goes quiet after some chunks (the watchdog re-arms after each one), and counts the cut once", async () => {
		const h = harness({ ORIGIN_IDLE_MS: "80" });
		const events = ['{"type":"start"}\n', '{"type":"token","n":0}\n', '{"type":"token","n":1}\n'];
		let cancelled = 0;
		h.origin.respond = () => new Response(paced(events, 30, { stall: true, onCancel: () => cancelled++ }));
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		// Without the cut this read never ends, and the test fails on its timeout.
		expect(await response.text()).toBe(events.join(""));
		expect(cancelled).toBe(1);
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "stream_cut" })).toBe(1);
	});

	it("does not count a cut when the client goes away, and cancels the origin", async () => {
		const h = harness({ ORIGIN_IDLE_MS: "80" });
		let cancelled = 0;
		h.origin.respond = () => new Response(paced(['{"type":"start"}\n'], 0, { stall: true, onCancel: () => cancelled++ }));
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		const reader = response.body!.getReader();
		await reader.read();
		await reader.cancel("client left");
		expect(cancelled).toBe(1);
		// Longer than ORIGIN_IDLE_MS: a watchdog left running would count a cut by now.
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(sampleValue(await scrape(h), "agent_origin_responses_total", { outcome: "stream_cut" })).toBe(0);
	});
});

/** An origin body sending `events` `gapMs` apart, then ending, or with `stall` never ending. */
function paced(events: string[], gapMs: number, options: { stall?: boolean; onCancel?: () => void } = {}): ReadableStream<Uint8Array> {
	const encoder = new TextEncoder();
	let sent = 0;
	return new ReadableStream<Uint8Array>({
		async pull(controller) {
			if (sent === events.length) {
				if (options.stall) return new Promise<void>(() => {});
				return controller.close();
			}
			if (sent > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
			controller.enqueue(encoder.encode(events[sent++]));
		},
		cancel() {
			options.onCancel?.();
		},
	});
}

describe("headers that never reach the origin", () => {
	it("drops every address, host and method-override name, and any name with an underscore; the listed ones still go", async () => {
		const h = harness({ ORIGIN_FORWARD_HEADERS: "X-Kept, X-Method-Name" });
		const dropped = {
			"X-Client-IP": "6.6.6.6",
			"Client-IP": "6.6.6.6",
			"X-Cluster-Client-IP": "6.6.6.6",
			"X-Originating-IP": "6.6.6.6",
			"X-Remote-Addr": "6.6.6.6",
			"X-Forwarded": "for=6.6.6.6",
			"Forwarded-For": "6.6.6.6",
			"X-Original-Forwarded-For": "6.6.6.6",
			"X-Host": "evil.test",
			"X-Original-Host": "evil.test",
			"X-Original-Method": "DELETE",
			"X-Method": "DELETE",
			X_Forwarded_For: "6.6.6.6",
			X_Client_Id: "admin",
			X_Auth_Mode: "bypass",
			X_Gateway_Token: "forged",
			X_Timestamp: "0",
			Accept_Encoding: "identity",
			my_header: "1",
			"Trailing-Underscore_": "1",
		};
		const request = await signedRequest({
			headers: { ...dropped, "CF-Connecting-IP": "203.0.113.7", Accept: "application/json", "Accept-Language": "fr", "X-Kept": "1", "X-Method-Name": "kept" },
		});
		expect((await h.fetch(request)).status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		for (const name of Object.keys(dropped)) expect(sent.get(name), name).toBeNull();
		expect([...sent.keys()].filter((name) => name.includes("_"))).toEqual([]);
		// The gateway's own values, not the look-alikes.
		expect(sent.get("x-forwarded-for")).toBe("203.0.113.7");
		expect(sent.get("x-client-id")).toBe(request.headers.get("x-client-id"));
		expect(sent.get("x-auth-mode")).toBe("hmac");
		expect(sent.get("x-gateway-token")).toBe("origin-token");
		for (const name of ["x-timestamp", "x-signature", "content-type", "accept", "accept-language", "x-kept", "x-method-name"]) {
			expect(sent.get(name), name).toBe(request.headers.get(name));
		}
	});
});

describe("answers that name the origin", () => {
	const answer = (h: ReturnType<typeof harness>, headers: [string, string][]) => {
		h.origin.respond = () => new Response(null, { status: 302, headers });
		return signedRequest().then((request) => h.fetch(request));
	};

	it.each([
		["https://origin.test/agent/chat/next", "/agent/chat/next"],
		["HTTPS://ORIGIN.TEST/agent/chat/next", "/agent/chat/next"],
		["https://origin.test./agent/chat/next", "/agent/chat/next"],
		["https://Origin.Test.:443/agent/chat/next", "/agent/chat/next"],
		["http://origin.test:80/agent/chat/next?q=1", "/agent/chat/next?q=1"],
		["//origin.test./agent/chat/next", "/agent/chat/next"],
		["https://user@origin.test/agent/chat/next", "/agent/chat/next"],
		["https://origin.test.evil.example/agent/chat/next", "https://origin.test.evil.example/agent/chat/next"],
		["/agent/chat/next", "/agent/chat/next"],
	])("Location and Content-Location %j become %j", async (reference, expected) => {
		const response = await answer(harness(), [["Location", reference], ["Content-Location", reference]]);
		expect(response.headers.get("location")).toBe(expected);
		expect(response.headers.get("content-location")).toBe(expected);
	});

	it.each([
		["http://[::ffff:127.0.0.1]:8080/agent/x", "http://127.0.0.1:8080"],
		["http://[::ffff:7f00:1]/agent/x", "http://127.0.0.1:8080"],
		["http://[0:0:0:0:0:ffff:7f00:1]:8080/agent/x", "http://127.0.0.1:8080"],
		["http://0x7f.1/agent/x", "http://127.0.0.1:8080"],
		["http://127.0.0.1./agent/x", "http://127.0.0.1:8080"],
		["http://127.0.0.1/agent/x", "http://[::ffff:127.0.0.1]:8080"],
		["http://127.0.0.1:8080/agent/x", "http://[::FFFF:7F00:1]:8080"],
	])("an IPv4 origin named %j, with ORIGIN_URL %j, is the origin", async (reference, originUrl) => {
		const response = await answer(harness({ ORIGIN_URL: originUrl, ENVIRONMENT: "development" }), [["Location", reference], ["Content-Location", reference]]);
		expect(response.headers.get("location")).toBe("/agent/x");
		expect(response.headers.get("content-location")).toBe("/agent/x");
	});

	it("another address that only looks close is not the origin", async () => {
		const h = harness({ ORIGIN_URL: "http://127.0.0.1:8080" });
		const response = await answer(h, [["Location", "http://[::ffff:7f00:2]/agent/x"], ["Content-Location", "http://127.0.0.10/agent/x"]]);
		expect(response.headers.get("location")).toBe("http://[::ffff:7f00:2]/agent/x");
		expect(response.headers.get("content-location")).toBe("http://127.0.0.10/agent/x");
	});

	it.each([
		["0; url=https://origin.test/agent/next", "0; url=/agent/next"],
		["5;URL='https://ORIGIN.test./agent/next?a=1'", "5; url=/agent/next?a=1"],
		['3, url="//origin.test/agent/next"', "3; url=/agent/next"],
		["1 https://origin.test:443/agent/next", "1; url=/agent/next"],
		["0; url=https://elsewhere.example/x", "0; url=https://elsewhere.example/x"],
		["0; url=/agent/next", "0; url=/agent/next"],
		["10", "10"],
	])("Refresh %j becomes %j", async (refresh, expected) => {
		const response = await answer(harness(), [["Refresh", refresh]]);
		expect(response.headers.get("refresh")).toBe(expected);
	});

	it("a Refresh it cannot read that names the origin is dropped", async () => {
		const response = await answer(harness(), [["Refresh", "soon; url=https://origin.test/agent/next"]]);
		expect(response.headers.get("refresh")).toBeNull();
	});

	it.each<[string, [string, string][], string]>([
		["two Refresh values joined by the runtime", [["Refresh", "0; url=https://origin.test/a"], ["Refresh", "1; url=https://origin.test/b"]], "https://origin.test"],
		["a Refresh whose URL part browsers read as relative", [["Refresh", "0;;url=https://origin.test/agent/next"]], "https://origin.test"],
		["a Refresh without a delay, the origin in another IPv4 spelling", [["Refresh", "url=http://0x7f000001/agent/x"]], "http://127.0.0.1:8080"],
		["two Location values joined by the runtime", [["Location", "https://origin.test/a"], ["Location", "https://origin.test/b"]], "https://origin.test"],
		["a Content-Location no URL parser reads", [["Content-Location", "https://origin.test%3A8443/agent/x"]], "https://origin.test"],
	])("%s never reaches the client with the origin's host in it", async (_, headers, originUrl) => {
		const response = await answer(harness({ ORIGIN_URL: originUrl, ENVIRONMENT: "development" }), headers);
		const host = new URL(originUrl).hostname;
		for (const name of ["location", "content-location", "refresh"]) expect(response.headers.get(name) ?? "").not.toContain(host);
		expect([...response.headers].map(([, value]) => value).join("\n")).not.toMatch(/origin\.test|0x7f000001/);
	});

	it("a reference that only mentions another host in its query is kept as rewritten", async () => {
		const response = await answer(harness(), [["Location", "https://origin.test/agent/next?return=//elsewhere.example/x"], ["Refresh", "0; url=/agent/next"]]);
		expect(response.headers.get("location")).toBe("/agent/next?return=//elsewhere.example/x");
		expect(response.headers.get("refresh")).toBe("0; url=/agent/next");
	});

	it("a quoted Set-Cookie Domain naming the origin is removed too", async () => {
		const response = await answer(harness(), [["Set-Cookie", 'a=1; Domain="origin.test"; Path=/']]);
		expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/"]);
	});

	it("removes a Set-Cookie Domain attribute naming the origin's host, in any spelling, and keeps every cookie in order", async () => {
		const h = harness();
		const response = await answer(h, [
			["Set-Cookie", "a=1; Domain=origin.test; Path=/; HttpOnly"],
			["Set-Cookie", "b=2; Secure; domain=.ORIGIN.TEST."],
			["Set-Cookie", "c=3; Domain=example.com; Path=/"],
			["Set-Cookie", "d=4; Max-Age=60"],
			["Set-Cookie", "e=5;DOMAIN = origin.test ;SameSite=Lax"],
		]);
		expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/; HttpOnly", "b=2; Secure", "c=3; Domain=example.com; Path=/", "d=4; Max-Age=60", "e=5;SameSite=Lax"]);
	});

	it("a Set-Cookie Domain that is the origin's IPv4 address in a mapped IPv6 spelling is removed too", async () => {
		const h = harness({ ORIGIN_URL: "http://127.0.0.1:8080" });
		const response = await answer(h, [["Set-Cookie", "a=1; Domain=[::ffff:127.0.0.1]"], ["Set-Cookie", "b=2; Domain=127.0.0.1"]]);
		expect(response.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
	});
});

describe("a streamed answer's total deadline (ORIGIN_STREAM_MAX_MS)", () => {
	/** Like the runtime's fetch: the origin's body errors when the fetch's signal aborts. */
	const abortable = (request: Request, events: string[], gapMs: number, onCancel: () => void = () => {}) => {
		const body = paced(events, gapMs, { stall: true, onCancel });
		const reader = body.getReader();
		return new ReadableStream<Uint8Array>({
			start(controller) {
				request.signal.addEventListener("abort", () => controller.error(request.signal.reason));
			},
			async pull(controller) {
				const next = await reader.read();
				if (!next.done) controller.enqueue(next.value);
			},
			cancel(reason) {
				return reader.cancel(reason);
			},
		});
	};
	const tokens = Array.from({ length: 40 }, (_, i) => `{"type":"token","n":${i}}\n`);
	/** The origin's stream: the first token, then the connection lost 20 ms later. */
	const breakingStream = () =>
		new Response(
			new ReadableStream<Uint8Array>({
				start(controller) {
					controller.enqueue(new TextEncoder().encode(tokens[0]));
					setTimeout(() => controller.error(new TypeError("Network connection lost.")), 20);
				},
			}),
		);
	const cuts = async (h: ReturnType<typeof harness>) => {
		const text = await scrape(h);
		return { deadline: sampleValue(text, "agent_origin_responses_total", { outcome: "stream_deadline" }), idle: sampleValue(text, "agent_origin_responses_total", { outcome: "stream_cut" }) };
	};

	it.each([{}, { ORIGIN_IDLE_MS: "disabled" }])("a quiet stream runs on until the deadline ends it, cleanly, counted as stream_deadline (%j)", async (idle) => {
		const h = harness({ ORIGIN_STREAM_MAX_MS: "300", ...idle });
		h.origin.respond = (request) => new Response(abortable(request, tokens.slice(0, 2), 0), { headers: { "Content-Type": "application/x-ndjson" } });
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		// Quiet for 300 ms after two events: the default idle cut (30 s) or none would not end it.
		expect(await response.text()).toBe(tokens.slice(0, 2).join(""));
		expect(await cuts(h)).toEqual({ deadline: 1, idle: 0 });
	});

	it("bounds a stream that keeps sending, whatever ORIGIN_IDLE_MS is", async () => {
		for (const idle of [{}, { ORIGIN_IDLE_MS: "disabled" }, { ORIGIN_IDLE_MS: "200" }]) {
			const h = harness({ ORIGIN_STREAM_MAX_MS: "250", ...idle });
			h.origin.respond = (request) => new Response(abortable(request, tokens, 20));
			const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
			const text = await response.text();
			expect(text.length, JSON.stringify(idle)).toBeGreaterThan(0);
			expect(tokens.join("").startsWith(text), JSON.stringify(idle)).toBe(true);
			expect(text.length, JSON.stringify(idle)).toBeLessThan(tokens.join("").length);
			expect(await cuts(h), JSON.stringify(idle)).toEqual({ deadline: 1, idle: 0 });
		}
	});

	it.each([{ ORIGIN_STREAM_MAX_MS: "60000" }, { ORIGIN_IDLE_MS: "60000" }])("with a bound set, an origin whose stream breaks ends the answer cleanly, counted as stream_cut (%j)", async (bounds) => {
		const h = harness(bounds);
		h.origin.respond = breakingStream;
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		expect(await response.text()).toBe(tokens[0]);
		await expect.poll(() => cuts(h)).toEqual({ deadline: 0, idle: 1 });
	});

	it("by default, an origin whose stream breaks breaks the client's answer as a bare proxy's would: the runtime's, nothing counted", async () => {
		const h = harness();
		h.origin.respond = breakingStream;
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		const reader = response.body!.getReader();
		expect(new TextDecoder().decode((await reader.read()).value)).toBe(tokens[0]);
		await expect(reader.read()).rejects.toThrow("Network connection lost.");
		expect(await cuts(h)).toEqual({ deadline: 0, idle: 0 });
	});

	it("ORIGIN_TIMEOUT_MS bounds the wait for the headers only, never the answer's body", async () => {
		const h = harness({ ORIGIN_TIMEOUT_MS: "50" });
		const events = tokens.slice(0, 8);
		h.origin.respond = (request) => {
			const body = abortable(request, events, 25);
			const reader = body.getReader();
			// Ends after the last event (`abortable` stalls), so the answer is whole if nothing aborts it.
			let sent = 0;
			return new Response(
				new ReadableStream<Uint8Array>({
					async pull(controller) {
						if (sent === events.length) return controller.close();
						const next = await reader.read();
						sent++;
						controller.enqueue(next.value);
					},
				}),
			);
		};
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		expect(await response.text()).toBe(events.join(""));
		expect(await cuts(h)).toEqual({ deadline: 0, idle: 0 });
	});

	it.each([{}, { ORIGIN_STREAM_MAX_MS: "200" }, { ORIGIN_STREAM_MAX_MS: "200", ORIGIN_IDLE_MS: "150" }])("a client that leaves cancels the origin's body, and is no cut (%j)", async (bounds) => {
		const h = harness(bounds);
		let cancelled = 0;
		h.origin.respond = (request) => new Response(abortable(request, tokens, 10, () => cancelled++));
		const response = await h.fetch(await signedRequest({ method: "GET", path: "/agent/stream" }));
		const reader = response.body!.getReader();
		await reader.read();
		await reader.cancel("client left");
		await expect.poll(() => cancelled).toBe(1);
		// Past the deadline: a cut counted for a stream the client had left would show by now.
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(await cuts(h)).toEqual({ deadline: 0, idle: 0 });
	});

	it("an answer of known length is the origin's own body, handed on untouched", async () => {
		const h = harness();
		let originBody: ReadableStream | null = null;
		h.origin.respond = () => {
			const answer = new Response("{}", { headers: { "Content-Length": "2" } });
			originBody = answer.body;
			return answer;
		};
		const response = await h.fetch(await signedRequest());
		expect(response.body).toBe(originBody);
	});
});

describe("the stream settings", () => {
	it.each([
		["ORIGIN_TIMEOUT_MS", "0"],
		["ORIGIN_STREAM_MAX_MS", "0"],
		["ORIGIN_STREAM_MAX_MS", "15m"],
		["ORIGIN_IDLE_MS", "0"],
		["ORIGIN_IDLE_MS", "-5"],
		["ORIGIN_IDLE_MS", "soon"],
		["ORIGIN_IDLE_MS", "off"],
	])("%s=%j is a config_error naming the variable, never the origin called", async (name, value) => {
		const h = harness({ [name]: value });
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(500);
		const body = await errorBody(response);
		expect(body.code).toBe("config_error");
		expect(body.detail).toContain(name);
		expect(h.origin.requests).toHaveLength(0);
	});
});
