import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { VerifiedRequest, VerifiedVariables } from "../auth/verified.ts";
import { DroppedNames, forwardToOrigin, originHeaders, type ForwardOptions } from "./forward.ts";

const silent = { info() {}, warn() {}, error() {} };

/** An origin that sends one chunk, then nothing; its body errors when the fetch's signal aborts, as the runtime's does. */
function quietOrigin(seen: { body: ReadableStream | null; cancelled: number; signal?: AbortSignal | null }): typeof fetch {
	return (async (_input: RequestInfo | URL, init?: RequestInit) => {
		const signal = init?.signal ?? null;
		seen.signal = signal;
		const body = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(new TextEncoder().encode('{"type":"start"}\n'));
				signal?.addEventListener("abort", () => controller.error(signal.reason));
			},
			cancel() {
				seen.cancelled++;
			},
		});
		seen.body = body;
		return new Response(body, { headers: { "Content-Type": "application/x-ndjson" } });
	}) as typeof fetch;
}

/** A Worker of one route: the verified request as a signature middleware sets it, then forwardToOrigin. */
function gateway(options: Partial<ForwardOptions>, watch: boolean) {
	const cuts: string[] = [];
	const app = new Hono<{ Variables: VerifiedVariables }>();
	app.get(
		"/agent/stream",
		async (c, next) => {
			c.set("verified", { scheme: "v1", clientId: "svc", path: "/agent/stream", query: "", body: new Uint8Array(0), coveredHeaders: [], replay: { id: "x", signedAt: "0" } });
			if (watch) c.set("watchAnswerEnd", true);
			await next();
		},
		forwardToOrigin({
			originUrl: "https://origin.test",
			originToken: null,
			timeoutMs: 1_000,
			streamMaxMs: 100,
			deadlineOnEveryCall: false,
			idleMs: null,
			forwardHeaders: [],
			events: { response() {}, streamCut: (reason) => void cuts.push(reason) },
			log: silent,
			...options,
		}),
	);
	return { cuts, request: () => app.request("https://gateway.test/agent/stream") };
}

describe("forwardToOrigin: which streamed answer gets the deadline (ORIGIN_STREAM_MAX_MS unset)", () => {
	it("an answer whose end is watched (a concurrent slot) is piped with it: cut at the deadline, counted", async () => {
		const seen = { body: null as ReadableStream | null, cancelled: 0 };
		const { cuts, request } = gateway({ fetch: quietOrigin(seen) }, true);
		const response = await request();
		expect(response.body).not.toBe(seen.body);
		// The origin stays quiet: only the deadline ends this read.
		expect(await response.text()).toBe('{"type":"start"}\n');
		expect(cuts).toEqual(["deadline"]);
	});

	it("any other is the origin's own body, handed to the runtime: no pipe, no deadline", async () => {
		const seen = { body: null as ReadableStream | null, cancelled: 0, signal: undefined as AbortSignal | null | undefined };
		const { cuts, request } = gateway({ fetch: quietOrigin(seen) }, false);
		const response = await request();
		// No signal on the call either: a signal costs the runtime tens of microseconds a call.
		expect(seen.signal).toBeNull();
		expect(response.body).toBe(seen.body);
		const reader = response.body!.getReader();
		await reader.read();
		// Well past the deadline a watched answer would have: nothing ended it.
		const next = await Promise.race([reader.read(), new Promise((resolve) => setTimeout(() => resolve("still open"), 300))]);
		expect(next).toBe("still open");
		expect(cuts).toEqual([]);
		await reader.cancel();
		expect(seen.cancelled).toBe(1);
	});

	it("with deadlineOnEveryCall (ORIGIN_STREAM_MAX_MS set), every answer is piped with it", async () => {
		const seen = { body: null as ReadableStream | null, cancelled: 0 };
		const { cuts, request } = gateway({ fetch: quietOrigin(seen), deadlineOnEveryCall: true }, false);
		expect(await (await request()).text()).toBe('{"type":"start"}\n');
		expect(cuts).toEqual(["deadline"]);
	});
});

describe("forwardToOrigin: an origin that cannot be reached", () => {
	it("with a deadline on the call, an origin that cannot be reached is 502 origin_unreachable, not a timeout", async () => {
		const outcomes: string[] = [];
		const unreachable = (async () => Promise.reject(new TypeError("Network connection lost."))) as typeof fetch;
		const { request } = gateway({ fetch: unreachable, deadlineOnEveryCall: true, streamMaxMs: 60_000, events: { response: (outcome) => void outcomes.push(outcome), streamCut() {} } }, false);
		const response = await request();
		expect(response.status).toBe(502);
		expect(await response.json()).toMatchObject({ code: "origin_unreachable" });
		expect(outcomes).toEqual(["unreachable"]);
	});
});

/** The names the gateway sets itself, the hop-by-hop ones and the spoofable ones, written out (src/routes/forward-header-names.ts). */
const GATEWAY_SET_NAMES = ["x-auth-mode", "x-gateway-token", "x-test-mode", "x-forwarded-for", "x-client-id", "x-token-hold", "x-token-reservation", "x-token-usage", "cf-connecting-ip", "host", "content-length"];
const HOP_BY_HOP_NAMES = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];
const SPOOFABLE_NAMES = [
	"forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "client-ip", "x-cluster-client-ip", "x-originating-ip", "x-remote-addr", "fastly-client-ip", "x-azure-clientip",
	"x-host", "x-original-host", "x-original-uri", "x-original-url", "x-rewrite-url", "x-envoy-original-path", "x-scheme", "x-url-scheme", "front-end-https",
	"x-http-method-override", "x-http-method", "x-method-override", "x-original-method", "remote-user", "x-remote-user", "x-user", "x-authenticated-user", "x-auth-request-user", "x-auth-request-email",
];

describe("forwardToOrigin's options", () => {
	it.each([["X-Tenant"], ["x_tenant"], ["x-gateway-token"], ["x-forwarded-host"], ["keep-alive"], ["x-timestamp"]])("refuses forwardHeaders naming %j when the factory runs", (name) => {
		expect(() => gateway({ forwardHeaders: [name] }, false)).toThrow("forwardHeaders");
	});

	it("refuses forwardHeaders naming any header the gateway sets or a hop-by-hop one", () => {
		for (const name of [...GATEWAY_SET_NAMES, ...HOP_BY_HOP_NAMES]) expect(() => gateway({ forwardHeaders: [name] }, false), name).toThrow("forwardHeaders");
	});

	it("takes an operator's spoofable name (its call): x-real-ip", () => {
		expect(() => gateway({ forwardHeaders: ["x-real-ip"] }, false)).not.toThrow();
	});
});

describe("originHeaders: what a v2 signature's coverage sends on", () => {
	const covering = (coveredHeaders: string[]): VerifiedRequest => ({ scheme: "v2", clientId: "svc", path: "/agent/chat", query: "", body: new Uint8Array(0), coveredHeaders, replay: { id: "x", signedAt: "0" } });
	const silentNames = new DroppedNames(silent);

	it("sends a covered header of its own, but never one with `_` (an origin behind CGI reads x_gateway_token as x-gateway-token), a cf- or x-forwarded- one", () => {
		const incoming = new Headers({ "x-tenant": "t", x_gateway_token: "forged", "cf-ray": "r", "x-forwarded-proto": "http" });
		const headers = originHeaders(incoming, covering(["x-tenant", "x_gateway_token", "cf-ray", "x-forwarded-proto"]), new Set(), silentNames, null);
		expect(Object.keys(headers).sort()).toEqual(["x-auth-mode", "x-client-id", "x-tenant"]);
	});

	it("a Connection list that names keep-alive or close beside a header still removes that header; never an end-to-end one", () => {
		for (const connection of ["keep-alive, x-tenant", "close, X-Tenant", "x-tenant,keep-alive"]) {
			const incoming = new Headers({ connection, "x-tenant": "t", "content-type": "application/json" });
			const v1: VerifiedRequest = { ...covering([]), scheme: "v1" };
			const headers = originHeaders(incoming, v1, new Set(["x-tenant", "content-type"]), silentNames, null);
			expect(Object.keys(headers).sort(), connection).toEqual(["content-type", "x-auth-mode", "x-client-id"]);
		}
		const both = originHeaders(new Headers({ connection: "content-type", "content-type": "a/b" }), covering([]), new Set(["content-type"]), silentNames, null);
		expect(both["content-type"]).toBe("a/b");
	});

	it("never sends on a covered name the gateway sets, a hop-by-hop one or a spoofable one (each named here, so none leaves the lists unnoticed)", () => {
		const incoming = new Headers([...GATEWAY_SET_NAMES, ...HOP_BY_HOP_NAMES, ...SPOOFABLE_NAMES].filter((name) => name !== "cf-connecting-ip").map((name) => [name, "forged"]));
		incoming.set("x-tenant", "t");
		const headers = originHeaders(incoming, covering([...incoming.keys()]), new Set(), silentNames, null);
		expect(headers).toEqual({ "x-tenant": "t", "x-auth-mode": "hmac", "x-client-id": "svc" });
	});

	it("X-Token-Limit (the gateway reads it) and the runtime's own names are dropped without a log line; a made-up name is logged", () => {
		const lines: unknown[] = [];
		const names = new DroppedNames({ ...silent, info: (_message: string, fields?: unknown) => void lines.push(fields) });
		const incoming = new Headers({ "x-token-limit": "100", "content-length": "0", "cf-connecting-ip": "203.0.113.7", "x-made-up": "1" });
		const headers = originHeaders(incoming, covering([]), new Set(), names, null);
		expect(Object.keys(headers).sort()).toEqual(["x-auth-mode", "x-client-id", "x-forwarded-for"]);
		expect(lines).toEqual([{ headers: "x-made-up" }]);
	});
});
