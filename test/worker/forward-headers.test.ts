import { describe, expect, it } from "vitest";
import { v2Request, withHeaders } from "./auth-harness.ts";
import { CLIENT_ID, errorBody, harness, ORIGIN, signedRequest } from "./harness.ts";

/** Every header the third review saw reach the origin as the client sent it, and the ones before it. */
const SPOOFED = {
	"CF-IPCountry": "ZZ",
	"CF-Visitor": '{"scheme":"https"}',
	"CF-Ray": "forged-ray",
	"Cf-Access-Authenticated-User-Email": "admin@example.com",
	"Cf-Access-Jwt-Assertion": "forged.jwt.value",
	"Remote-User": "admin",
	"X-Remote-User": "admin",
	"X-Auth-Request-User": "admin",
	"X-Auth-Request-Email": "admin@example.com",
	"X-Authenticated-User": "admin",
	"X-User": "admin",
	"X-Original-URI": "/admin",
	"X-Envoy-Original-Path": "/admin",
	"X-Scheme": "https",
	"X-Url-Scheme": "https",
	"Front-End-Https": "on",
	"Fastly-Client-IP": "6.6.6.6",
	"X-Azure-ClientIP": "6.6.6.6",
	// Found by earlier rounds: still dropped.
	Forwarded: "for=6.6.6.6",
	"X-Forwarded-For": "6.6.6.6",
	"X-Forwarded-Host": "evil.test",
	"X-Real-IP": "6.6.6.6",
	"True-Client-IP": "6.6.6.6",
	"X-HTTP-Method-Override": "DELETE",
	"X-Auth-Mode": "bypass",
	"X-Gateway-Token": "forged",
	"X-Test-Mode": "stub",
	X_Client_Id: "admin",
	"X-Made-Up": "1",
};

/** Headers of the default list, as a client sends them. */
const LISTED = {
	Accept: "application/x-ndjson",
	"Accept-Language": "fr",
	Authorization: "Bearer user-session",
	Cookie: "session=1",
	"User-Agent": "agent-client/1.0",
	"Idempotency-Key": "idem-1",
	Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	Tracestate: "vendor=1",
	"X-Request-Id": "req-1",
};

const sorted = (headers: Headers) => [...headers.keys()].sort();

describe("request headers reach the origin by a list, not a chase", () => {
	it("v1: the default list, v1's own three and the gateway's own; none of the spoofable names, the v2 fields or a made-up name", async () => {
		const h = harness();
		const request = await signedRequest({
			headers: { ...SPOOFED, ...LISTED, "CF-Connecting-IP": "203.0.113.7", Signature: "sig1=:AAAA:", "Content-Digest": "sha-256=:AAAA:" },
		});
		expect((await h.fetch(request)).status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		expect(sorted(sent)).toEqual(
			[...Object.keys(LISTED).map((name) => name.toLowerCase()), "content-type", "x-client-id", "x-timestamp", "x-signature", "x-auth-mode", "x-forwarded-for", "x-gateway-token"].sort(),
		);
		for (const [name, value] of Object.entries(LISTED)) expect(sent.get(name), name).toBe(value);
		for (const name of ["x-client-id", "x-timestamp", "x-signature"]) expect(sent.get(name), name).toBe(request.headers.get(name));
		expect(sent.get("x-auth-mode")).toBe("hmac");
		expect(sent.get("x-gateway-token")).toBe("origin-token");
		// The runtime's address, never a client's X-Forwarded-For, nor appended to one.
		expect(sent.get("x-forwarded-for")).toBe("203.0.113.7");
	});

	it("v2: the default list, Signature, Signature-Input, Content-Digest and the verified keyid; a client-chosen X-Timestamp and X-Signature never", async () => {
		const h = harness();
		const request = withHeaders(await v2Request(), (headers) => {
			for (const [name, value] of Object.entries({ ...SPOOFED, ...LISTED, "X-Timestamp": "1", "X-Signature": "f".repeat(64), "X-Client-Id": "admin" })) headers.set(name, value);
		});
		expect((await h.fetch(request)).status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		expect(sorted(sent)).toEqual(
			[...Object.keys(LISTED).map((name) => name.toLowerCase()), "content-type", "signature", "signature-input", "content-digest", "x-client-id", "x-auth-mode", "x-gateway-token"].sort(),
		);
		for (const name of ["signature", "signature-input", "content-digest"]) expect(sent.get(name), name).toBe(request.headers.get(name));
		expect(sent.get("x-client-id")).toBe(CLIENT_ID);
		expect(sent.get("x-timestamp")).toBeNull();
		expect(sent.get("x-signature")).toBeNull();
	});

	it("v2: a header the signature covers goes on, unless the gateway sets it, it is v1's, Cloudflare's or a spoofable name", async () => {
		const h = harness({ ORIGIN_TOKEN: "" });
		const covered = {
			"x-tenant": "acme",
			"x-timestamp": "1",
			"x-real-ip": "6.6.6.6",
			"x-forwarded-host": "evil.test",
			"cf-ipcountry": "ZZ",
			"x-gateway-token": "forged",
			"x-user": "admin",
		};
		const response = await h.fetch(await v2Request({ coveredHeaders: covered }));
		expect(response.status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		expect(sent.get("x-tenant")).toBe("acme");
		for (const name of Object.keys(covered).filter((name) => name !== "x-tenant")) expect(sent.get(name), name).toBeNull();
	});

	it("ORIGIN_FORWARD_HEADERS adds names to the list, in any letter case; a Connection header still removes an added one", async () => {
		const h = harness({ ORIGIN_FORWARD_HEADERS: " X-Tenant ,x-feature-flags,, CF-IPCountry" });
		const request = await signedRequest({ headers: { "X-Tenant": "acme", "X-Feature-Flags": "a,b", "CF-IPCountry": "FR", "X-Other": "1" } });
		expect((await h.fetch(request)).status).toBe(200);
		const sent = h.origin.requests[0]!.headers;
		expect([sent.get("x-tenant"), sent.get("x-feature-flags"), sent.get("cf-ipcountry"), sent.get("x-other")]).toEqual(["acme", "a,b", "FR", null]);
		await h.fetch(await signedRequest({ timestamp: 1_763_000_000_001, headers: { "X-Tenant": "acme", Connection: "X-Tenant" } }));
		expect(h.origin.requests[1]!.headers.get("x-tenant")).toBeNull();
	});

	it.each([
		["X_Tenant", "names a header with an underscore"],
		["X-Tenant, Keep-Alive", "names a hop-by-hop header"],
		["X-Gateway-Token", "names a header the gateway sets itself"],
		["x-forwarded-proto", "names a header the gateway sets itself"],
		["CF-Connecting-IP", "names a header the gateway sets itself"],
		["X-Token-Hold", "names a header the gateway sets itself"],
		["X-Timestamp", "names a signature header (the verifying scheme's go on by themselves)"],
		["Signature-Input", "names a signature header (the verifying scheme's go on by themselves)"],
		["X Tenant", "has an entry that is not a header name"],
	])("ORIGIN_FORWARD_HEADERS=%j is a config_error that says it %s, never the name", async (value, fault) => {
		const h = harness({ ORIGIN_FORWARD_HEADERS: value });
		const response = await h.fetch(await signedRequest());
		expect(response.status).toBe(500);
		const body = await errorBody(response);
		expect(body.code).toBe("config_error");
		expect(body.detail).toContain(`ORIGIN_FORWARD_HEADERS ${fault}`);
		expect(body.detail.toLowerCase()).not.toContain(value.split(",").at(-1)!.trim().toLowerCase());
		expect(h.origin.requests).toHaveLength(0);
	});

	it("logs each dropped name once per isolate, the name only, in lines at most one per 10 s; the runtime's own names not at all", async () => {
		const h = harness();
		const lines = () => h.logs.filter((line) => line.message.startsWith("request headers not forwarded"));
		const send = async (n: number, headers: Record<string, string>) =>
			expect((await h.fetch(await signedRequest({ timestamp: h.clock.now + n, headers: { ...headers, "CF-Connecting-IP": "203.0.113.7", Connection: "keep-alive" } }))).status).toBe(200);
		await send(0, { "X-Secretive": "value-never-logged", "CF-Ray": "ray-value" });
		await send(1, { "X-Secretive": "value-never-logged" });
		expect(lines().map((line) => line.fields)).toEqual([{ headers: "cf-ray, x-secretive" }]);
		// A new name within the interval waits for the next line; a name logged before is not logged again.
		await send(2, { "X-Later": "1", "X-Secretive": "1" });
		expect(lines()).toHaveLength(1);
		h.clock.now += 10_000;
		await send(3, { "X-Secretive": "1" });
		expect(lines().map((line) => line.fields)).toEqual([{ headers: "cf-ray, x-secretive" }, { headers: "x-later" }]);
		expect(JSON.stringify(h.logs)).not.toContain("value-never-logged");
		expect(JSON.stringify(h.logs)).not.toMatch(/connecting-ip|connection|content-length|"host/);
	});

	it("a client's CF-Connecting-IP reaches the origin only as X-Forwarded-For; without one, the origin gets none", async () => {
		const h = harness({ ORIGIN_FORWARD_HEADERS: "X-Real-IP" });
		await h.fetch(await signedRequest({ headers: { "CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "6.6.6.6, 7.7.7.7" } }));
		await h.fetch(await signedRequest({ timestamp: 1_763_000_000_001, headers: { "X-Forwarded-For": "6.6.6.6" } }));
		const [first, second] = h.origin.requests.map((sent) => sent.headers);
		expect(first!.get("cf-connecting-ip")).toBeNull();
		expect(first!.get("x-forwarded-for")).toBe("203.0.113.7");
		expect(second!.get("x-forwarded-for")).toBeNull();
	});
});

describe("answers never name the origin", () => {
	const answer = async (headers: [string, string][], overrides: Record<string, string> = {}) => {
		const h = harness(overrides);
		h.origin.respond = () => new Response("{}", { status: 200, headers: [["Content-Length", "2"], ...headers] });
		return h.fetch(await signedRequest());
	};

	it("Link: each URL on the origin's host becomes a gateway path, the others stay", async () => {
		const response = await answer([["Link", '<https://ORIGIN.test./base/agent/next?p=2>; rel="next", <https://cdn.example/app.css>; rel=preload; as=style, </agent/prev>; rel="prev"']], {
			ORIGIN_URL: `${ORIGIN}/base`,
		});
		expect(response.headers.get("link")).toBe('</agent/next?p=2>; rel="next", <https://cdn.example/app.css>; rel=preload; as=style, </agent/prev>; rel="prev"');
	});

	it("Alt-Svc is never passed on, even one that names no host", async () => {
		const response = await answer([["Alt-Svc", 'h3=":443"; ma=86400']]);
		expect(response.headers.get("alt-svc")).toBeNull();
	});

	it("Server (the origin's software) is never passed on; the headers beside it are", async () => {
		const response = await answer([
			["Server", "uvicorn"],
			["X-Served-By", "agent-backend"],
		]);
		expect(response.status).toBe(200);
		expect(response.headers.get("server")).toBeNull();
		expect(response.headers.get("x-served-by")).toBe("agent-backend");
	});

	it.each<[string, string, string?]>([
		["Content-Security-Policy", "default-src 'self'; report-uri https://origin.test/csp-report"],
		["Access-Control-Allow-Origin", "https://origin.test"],
		["WWW-Authenticate", 'Bearer realm="origin.test", error="invalid_token"'],
		["Report-To", '{"group":"csp","max_age":10886400,"endpoints":[{"url":"https:\\/\\/origin.test\\/reports"}]}'],
		["Timing-Allow-Origin", "https://ORIGIN.TEST.:8443"],
		["X-Served-By", "origin.test:8000"],
		["X-Backend", "pool=a; host=origin%2Etest"],
		["Link", '</agent/next>; rel="next"; anchor="https://origin.test/agent/x"'],
		["X-Upstream", "[::ffff:7f00:1]:8080", "http://127.0.0.1:8080"],
		["X-Upstream", "127.0.0.1:8080", "http://127.0.0.1:8080"],
	])("%s naming the origin (%j) is dropped", async (name, value, originUrl = ORIGIN) => {
		const response = await answer([[name, value], ["X-Other", "kept"]], { ORIGIN_URL: originUrl, ENVIRONMENT: "development" });
		expect(response.status).toBe(200);
		expect(response.headers.get(name)).toBeNull();
		expect(response.headers.get("x-other")).toBe("kept");
	});

	it("a value that names only another host, or the origin's name inside a longer one, is kept", async () => {
		const kept: [string, string][] = [
			["Access-Control-Allow-Origin", "https://app.example"],
			["Timing-Allow-Origin", "*"],
			["X-Mirror", "myorigin.test, origin.test.example, api.origin.testing"],
			["Content-Security-Policy", "default-src 'self'; report-uri /csp-report"],
		];
		const response = await answer(kept);
		for (const [name, value] of kept) expect(response.headers.get(name), name).toBe(value);
	});

	it("a cookie that still names the origin is dropped; the others are kept in order", async () => {
		const response = await answer([
			["Set-Cookie", "a=1; Path=/"],
			["Set-Cookie", "back=https://origin.test/agent; Path=/"],
			["Set-Cookie", "c=3; Domain=origin.test"],
		]);
		expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/", "c=3"]);
	});

	it("the origin's own X-Auth-Mode never reaches the client: exactly hmac, on a whole answer and on a streamed one", async () => {
		const h = harness();
		h.origin.respond = () => new Response("{}", { headers: { "X-Auth-Mode": "bypass", "Content-Length": "2" } });
		const whole = await h.fetch(await signedRequest());
		expect(whole.headers.get("x-auth-mode")).toBe("hmac");
		h.origin.respond = () => new Response(new Response("{}").body, { headers: { "X-Auth-Mode": "bypass, test" } });
		const streamed = await h.fetch(await signedRequest({ timestamp: 1_763_000_000_001 }));
		expect(streamed.headers.get("x-auth-mode")).toBe("hmac");
		expect(await streamed.text()).toBe("{}");
	});
});
