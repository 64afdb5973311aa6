import type { MiddlewareHandler } from "hono";
import type { VerifiedVariables } from "../auth/verified.ts";
import { gatewayError } from "../errors.ts";
import type { OriginEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";
import { originAddress, rewriteOriginReferences } from "./forward-answer.ts";
import { cutWhenIdle, passNatively } from "./forward-stream.ts";

export interface ForwardOptions {
	/** `ORIGIN_URL` without a trailing slash. */
	originUrl: string;
	/** Sent as `X-Gateway-Token` when set (`ORIGIN_TOKEN`). */
	originToken: string | null;
	/** Budget for the origin's response headers (`ORIGIN_TIMEOUT_MS`). */
	timeoutMs: number;
	/** Total deadline of one origin call, a streamed answer's body included (`ORIGIN_STREAM_MAX_MS`). */
	streamMaxMs: number;
	/** Longest gap between chunks of a streamed answer (`ORIGIN_IDLE_MS`); null: no idle cut, the answer piped natively. */
	idleMs: number | null;
	events: OriginEvents;
	/** Where an unreachable origin is logged (its host and the error's kind, never a secret). */
	log: Logger;
	/** The fetch that reaches the origin (a test passes a fake). @default globalThis.fetch */
	fetch?: typeof fetch;
}

const LOG_INTERVAL_MS = 10_000;

/**
 * Forwards a request that passed the signature and replay checks (`c.var.verified`) to the
 * origin and streams the answer back as it arrives (docs/design.md, "Forwarding").
 *
 * @example
 * ```ts
 * app.all("/agent/*", forwardToOrigin({ originUrl, originToken: null, timeoutMs: 60_000, streamMaxMs: 900_000, idleMs: null, events, log }));
 * ```
 */
export const forwardToOrigin = (options: ForwardOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (!/^https?:\/\//i.test(options.originUrl)) throw new Error("forwardToOrigin: originUrl must be an http(s) URL");
	if (!(options.timeoutMs > 0) || !(options.streamMaxMs > 0) || !(options.idleMs === null || options.idleMs > 0)) {
		throw new Error("forwardToOrigin: timeouts must be positive");
	}
	if (options.log === undefined) throw new Error("forwardToOrigin: log is required");
	const send = options.fetch ?? ((input, init) => fetch(input, init));
	const { events, log, idleMs } = options;
	const origin = originAddress(options.originUrl);
	const originHost = new URL(options.originUrl).host;
	const throttle = new LogThrottle(LOG_INTERVAL_MS);
	const onCut = (reason: "idle" | "deadline") => events.streamCut(reason);

	return async function forwardToOrigin(c) {
		const request = c.req.raw;
		const { path, query, body, scheme, clientId } = c.var.verified;
		// String concatenation, never `new URL(path, base)`, which would resolve dot segments.
		const target = options.originUrl + path + query;
		const headers = forwardedRequestHeaders(request.headers, options.originToken);
		// v2 signs the client id (keyid): the origin gets that one, never a client-sent header.
		if (scheme === "v2") headers.set("X-Client-Id", clientId);
		// A budgeted client's hold: the most this request may spend, and the reservation the origin reports against.
		const reservation = c.var.reservation;
		if (reservation !== undefined) {
			headers.set("X-Token-Hold", String(reservation.hold));
			headers.set("X-Token-Reservation", reservation.id);
		}

		// Both bounds are the runtime's timers, never cleared (a clearTimeout of our own costs more
		// than the rest of this function): the deadline stays on the fetch, so it ends the answer's
		// body too; the wait for the headers aborts the call only while no headers have come.
		const deadline = AbortSignal.timeout(options.streamMaxMs);
		const waiting = new AbortController();
		let response: Response | undefined;
		AbortSignal.timeout(options.timeoutMs).onabort = () => response === undefined && waiting.abort();
		const signal = AbortSignal.any([deadline, waiting.signal]);
		const started = performance.now();
		try {
			response = await send(target, {
				method: request.method,
				headers,
				body: request.method === "GET" ? null : body,
				signal,
				redirect: "manual",
			});
		} catch (error) {
			const seconds = (performance.now() - started) / 1000;
			if (signal.aborted) {
				events.response("timeout", seconds);
				throw gatewayError("origin_timeout");
			}
			events.response("unreachable", seconds);
			// The host (never userinfo or the path) and the error's name: its message can quote a URL.
			const suppressed = throttle.admit("unreachable");
			if (suppressed !== null) {
				log.error("origin unreachable", { origin_host: originHost, error: error instanceof Error ? error.name : typeof error, suppressed });
			}
			throw gatewayError("origin_unreachable");
		}
		// A Response takes a status of 200 to 599 only: an origin's 101 or 600 is a bad answer (502), never a 500.
		if (response.status < 200 || response.status > 599) {
			events.response("unreachable", (performance.now() - started) / 1000);
			response.body?.cancel().catch(() => {});
			throw gatewayError("origin_unreachable", { detail: "The agent backend gave an answer the gateway cannot pass on." });
		}
		events.response(response.status >= 500 ? "status_5xx" : "ok", (performance.now() - started) / 1000);

		// An answer of known length (and not re-encoded by the runtime), or without a body, passes
		// through as the origin sent it. A streamed one is watched for the gap between its chunks
		// (the default), or with the idle cut `disabled` handed to the runtime, watched only for
		// how it ends; it loses a Content-Length it could no longer keep if cut.
		const originBody = response.body;
		const whole = originBody === null || (response.headers.has("content-length") && !response.headers.has("content-encoding"));
		const answerBody = whole ? originBody : idleMs === null ? passNatively(originBody, deadline, onCut) : cutWhenIdle(originBody, idleMs, deadline, onCut);
		// The Response constructor copies the headers once; they are edited on that copy.
		const answer = new Response(answerBody, response);
		dropHopByHop(answer.headers);
		if (!whole) answer.headers.delete("content-length");
		answer.headers.set("X-Auth-Mode", "hmac");
		rewriteOriginReferences(answer.headers, origin);
		return answer;
	};
};

// What crosses the gateway in either direction, header by header: docs/design.md, "Forwarding".

const HOP_BY_HOP = [
	"connection",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
];
/** Headers a client must never be able to set on the way to the origin. */
const GATEWAY_OWNED = ["host", "content-length", "x-auth-mode", "x-gateway-token", "x-test-mode", "x-token-hold", "x-token-reservation"];
/**
 * Headers a client could use to spoof its address, the host or the method behind the gateway:
 * frameworks and proxies read each of these in some configuration.
 */
const SPOOFING = [
	"forwarded",
	"forwarded-for",
	"x-forwarded",
	"x-original-forwarded-for",
	"x-real-ip",
	"true-client-ip",
	"x-client-ip",
	"client-ip",
	"x-cluster-client-ip",
	"x-originating-ip",
	"x-remote-addr",
	"x-host",
	"x-original-host",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
	"x-original-method",
	"x-method",
	"x-original-url",
	"x-rewrite-url",
];
/** End-to-end headers the origin needs: a client's `Connection` header cannot remove them. */
const END_TO_END: ReadonlySet<string> = new Set(["x-client-id", "x-timestamp", "x-signature", "content-type", "content-encoding", "content-language", "accept"]);
const NOTHING_KEPT: ReadonlySet<string> = new Set();
/** Every header name a client sends that never reaches the origin (besides `X-Forwarded-*` and names with `_`). */
const NOT_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...GATEWAY_OWNED, ...SPOOFING]);

/**
 * The headers sent to the origin, built in one pass over the client's: without hop-by-hop
 * ones (a client's `Connection` list never removes an end-to-end header), the gateway's own,
 * the spoofing ones, `X-Forwarded-*` and any name with an underscore (a WSGI or CGI origin
 * reads `X_Gateway_Token` as `X-Gateway-Token`, as nginx knows: it drops them by default);
 * then the gateway's.
 */
export function forwardedRequestHeaders(incoming: Headers, originToken: string | null): Headers {
	const connection = incoming.get("connection");
	const listed = connection === null ? NOTHING_KEPT : connectionNames(connection, END_TO_END);
	const headers = new Headers();
	for (const [name, value] of incoming) {
		if (NOT_FORWARDED.has(name) || listed.has(name) || name.startsWith("x-forwarded-") || name.includes("_")) continue;
		headers.append(name, value);
	}
	headers.set("X-Auth-Mode", "hmac");
	const clientIp = incoming.get("cf-connecting-ip");
	if (clientIp !== null) headers.set("X-Forwarded-For", clientIp);
	if (originToken !== null) headers.set("X-Gateway-Token", originToken);
	return headers;
}

/** Deletes the hop-by-hop headers of an answer, and those its `Connection` header lists, in place. */
export function dropHopByHop(headers: Headers): void {
	const listed = headers.get("connection");
	if (listed !== null) for (const name of connectionNames(listed, NOTHING_KEPT)) headers.delete(name);
	for (const name of HOP_BY_HOP) headers.delete(name);
}

/** The lowercased names a `Connection` header lists, except the ones in `keep`. */
function connectionNames(value: string, keep: ReadonlySet<string>): ReadonlySet<string> {
	const names = new Set<string>();
	for (const raw of value.split(",")) {
		const name = raw.trim().toLowerCase();
		if (name !== "" && !keep.has(name)) names.add(name);
	}
	return names;
}
