import type { MiddlewareHandler } from "hono";
import type { VerifiedVariables } from "../auth/verified.ts";
import { gatewayError } from "../errors.ts";
import type { OriginEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";

export interface ForwardOptions {
	/** `ORIGIN_URL` without a trailing slash. */
	originUrl: string;
	/** Sent as `X-Gateway-Token` when set (`ORIGIN_TOKEN`). */
	originToken: string | null;
	/** Budget for the origin's response headers. @default 60000 (`ORIGIN_TIMEOUT_MS`) */
	timeoutMs: number;
	/** Longest gap between chunks of a streamed answer. @default 30000 (`ORIGIN_IDLE_MS`) */
	idleMs: number;
	events: OriginEvents;
	/** Where an unreachable origin is logged (its host and the error's kind, never a secret). */
	log: Logger;
	/** The fetch that reaches the origin (a test passes a fake). @default globalThis.fetch */
	fetch?: typeof fetch;
}

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
const GATEWAY_OWNED = ["host", "content-length", "x-auth-mode", "x-gateway-token", "x-test-mode"];
/** Headers a client could use to spoof its address or change the request's meaning behind the gateway. */
const SPOOFING = [
	"forwarded",
	"x-real-ip",
	"true-client-ip",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
	"x-original-url",
	"x-rewrite-url",
];
/** End-to-end headers the origin needs: a client's `Connection` header cannot remove them. */
const END_TO_END = new Set(["x-client-id", "x-timestamp", "x-signature", "content-type", "content-encoding", "content-language", "accept"]);
const LOG_INTERVAL_MS = 10_000;
const NOTHING_KEPT: ReadonlySet<string> = new Set();
/** Every header name a client sends that never reaches the origin (besides `X-Forwarded-*`). */
const NOT_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...GATEWAY_OWNED, ...SPOOFING]);

/**
 * Forwards a request that passed the signature and replay checks (`c.var.verified`) to the
 * origin (SPEC section 6) and streams the answer back as it arrives.
 *
 * @example
 * ```ts
 * app.all("/agent/*", forwardToOrigin({ originUrl, originToken: null, timeoutMs: 60_000, idleMs: 30_000, events }));
 * ```
 */
export const forwardToOrigin = (options: ForwardOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (!/^https?:\/\//.test(options.originUrl)) throw new Error("forwardToOrigin: originUrl must be an http(s) URL");
	if (!(options.timeoutMs > 0) || !(options.idleMs > 0)) throw new Error("forwardToOrigin: timeouts must be positive");
	if (options.log === undefined) throw new Error("forwardToOrigin: log is required");
	const send = options.fetch ?? ((input, init) => fetch(input, init));
	const { events, log } = options;
	const origin = new URL(options.originUrl);
	const throttle = new LogThrottle(LOG_INTERVAL_MS);

	return async function forwardToOrigin(c) {
		const request = c.req.raw;
		const { path, query, body, scheme, clientId } = c.var.verified;
		// String concatenation, never `new URL(path, base)`, which would resolve dot segments.
		const target = options.originUrl + path + query;
		const headers = forwardedRequestHeaders(request.headers, options.originToken);
		// v2 signs the client id (keyid): the origin gets that one, never a client-sent header.
		if (scheme === "v2") headers.set("X-Client-Id", clientId);

		// One runtime timer, no controller or clearTimeout of our own on the request path.
		const signal = AbortSignal.timeout(options.timeoutMs);
		const started = performance.now();
		let response: Response;
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
				log.error("origin unreachable", { origin_host: origin.host, error: error instanceof Error ? error.name : typeof error, suppressed });
			}
			throw gatewayError("origin_unreachable");
		}
		events.response(response.status >= 500 ? "status_5xx" : "ok", (performance.now() - started) / 1000);

		// An answer of known length (and not re-encoded by the runtime), or without a body, passes
		// through as the origin sent it: no JavaScript runs per chunk. Only a streamed answer gets
		// the idle watchdog, and loses a Content-Length it could no longer keep if cut.
		const originBody = response.body;
		const whole = originBody === null || (response.headers.has("content-length") && !response.headers.has("content-encoding"));
		// The Response constructor copies the headers once; they are edited on that copy.
		const answer = new Response(whole ? originBody : cutWhenIdle(originBody, options.idleMs, () => events.streamCut()), response);
		dropHopByHop(answer.headers);
		if (!whole) answer.headers.delete("content-length");
		answer.headers.set("X-Auth-Mode", "hmac");
		rewriteLocation(answer.headers, origin);
		return answer;
	};
};

/**
 * The headers sent to the origin, built in one pass over the client's: without hop-by-hop
 * ones (a client's `Connection` list never removes an end-to-end header), the gateway's own,
 * the spoofing ones and `X-Forwarded-*`; then the gateway's.
 */
function forwardedRequestHeaders(incoming: Headers, originToken: string | null): Headers {
	const connection = incoming.get("connection");
	const listed = connection === null ? NOTHING_KEPT : connectionNames(connection, END_TO_END);
	const headers = new Headers();
	for (const [name, value] of incoming) {
		if (NOT_FORWARDED.has(name) || listed.has(name) || name.startsWith("x-forwarded-")) continue;
		headers.append(name, value);
	}
	headers.set("X-Auth-Mode", "hmac");
	const clientIp = incoming.get("cf-connecting-ip");
	if (clientIp !== null) headers.set("X-Forwarded-For", clientIp);
	if (originToken !== null) headers.set("X-Gateway-Token", originToken);
	return headers;
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

/** Deletes the hop-by-hop headers, and those its `Connection` header lists, in place. */
function dropHopByHop(headers: Headers): Headers {
	const listed = headers.get("connection");
	if (listed !== null) for (const name of connectionNames(listed, NOTHING_KEPT)) headers.delete(name);
	for (const name of HOP_BY_HOP) headers.delete(name);
	return headers;
}

/**
 * A `Location` on the origin's host (absolute or scheme-relative, any scheme or port) becomes
 * a path on the gateway, without `ORIGIN_URL`'s own path prefix: the origin's address never
 * reaches a client, and a client that follows it comes back through the gateway.
 */
function rewriteLocation(headers: Headers, origin: URL): void {
	const location = headers.get("location")?.trim();
	// A path-relative Location means the same on the gateway; anything else is resolved (as a
	// browser would, backslashes included) and checked for the origin's host.
	if (location === undefined || !/^([a-z][a-z0-9+.-]*:|[\\/])/i.test(location)) return;
	let target: URL;
	try {
		target = new URL(location, origin);
	} catch {
		return;
	}
	if (target.hostname.toLowerCase() !== origin.hostname.toLowerCase()) return;
	const base = origin.pathname.replace(/\/+$/, "");
	let path = target.pathname;
	if (base !== "" && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || "/";
	headers.set("location", path + target.search + target.hash);
}

/**
 * Passes chunks through as they arrive; when the origin sends none for `idleMs` while the
 * client waits for one, or its stream breaks, cancels the origin and ends the answer.
 * The watchdog is one timer for the whole answer, re-armed from the time the pending read
 * began: a chunk costs no timer, no race and no extra promise.
 */
function cutWhenIdle(body: ReadableStream<Uint8Array>, idleMs: number, onCut: () => void): ReadableStream<Uint8Array> {
	const reader = body.getReader();
	/** When the read now pending began; null while none is (the client has not asked for more). */
	let waitingSince: number | null = null;
	let timer: ReturnType<typeof setTimeout> | undefined;
	let ended = false;
	const end = () => {
		ended = true;
		if (timer !== undefined) clearTimeout(timer);
	};
	return new ReadableStream<Uint8Array>({
		start(controller) {
			const watch = () => {
				if (ended) return;
				const quiet = waitingSince === null ? 0 : Date.now() - waitingSince;
				if (quiet < idleMs) {
					timer = setTimeout(watch, idleMs - quiet);
					return;
				}
				end();
				onCut();
				// Ends the pending read too (done), which the pull below then ignores.
				reader.cancel("origin idle").catch(() => {});
				controller.close();
			};
			timer = setTimeout(watch, idleMs);
		},
		async pull(controller) {
			waitingSince = Date.now();
			try {
				const next = await reader.read();
				waitingSince = null;
				if (ended) return;
				if (next.done) {
					end();
					controller.close();
				} else {
					controller.enqueue(next.value);
				}
			} catch {
				if (ended) return;
				end();
				onCut();
				controller.close();
			}
		},
		cancel(reason) {
			end();
			return reader.cancel(reason);
		},
	});
}
