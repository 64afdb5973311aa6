import type { MiddlewareHandler } from "hono";
import { errorResponse } from "../errors.ts";
import type { GatewayEnv } from "../context.ts";

export type OriginOutcome = "ok" | "status_5xx" | "timeout" | "unreachable" | "stream_cut";

/** What forwarding reports; the metrics implement it. */
export interface OriginEvents {
	/** Once per forwarded request, when its response headers arrived or it failed. */
	response(outcome: Exclude<OriginOutcome, "stream_cut">, seconds: number): void;
	/** A streamed answer cut because the origin went quiet for `idleMs`, or broke. */
	streamCut(): void;
}

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

/**
 * Forwards a request that passed `hmacAuth` to the origin (SPEC section 6) and streams
 * the answer back as it arrives.
 *
 * @example
 * ```ts
 * app.on(["GET", "POST"], "/agent/*", hmacAuth(...), forwardToOrigin({ originUrl, originToken: null, timeoutMs: 60_000, idleMs: 30_000, events }));
 * ```
 */
export const forwardToOrigin = (options: ForwardOptions): MiddlewareHandler<GatewayEnv> => {
	if (!/^https?:\/\//.test(options.originUrl)) throw new Error("forwardToOrigin: originUrl must be an http(s) URL");
	if (!(options.timeoutMs > 0) || !(options.idleMs > 0)) throw new Error("forwardToOrigin: timeouts must be positive");
	const send = options.fetch ?? ((input, init) => fetch(input, init));
	const { events } = options;

	return async function forwardToOrigin(c) {
		const request = c.req.raw;
		const { path, body } = c.var.signed;
		// String concatenation, never `new URL(path, base)`, which would resolve dot segments.
		const target = options.originUrl + path + c.var.query;
		const headers = forwardedRequestHeaders(request.headers, options.originToken);

		const controller = new AbortController();
		const timer = setTimeout(() => controller.abort(), options.timeoutMs);
		const started = performance.now();
		let response: Response;
		try {
			response = await send(target, {
				method: request.method,
				headers,
				body: request.method === "GET" ? null : body,
				signal: controller.signal,
				redirect: "manual",
			});
		} catch {
			const seconds = (performance.now() - started) / 1000;
			if (controller.signal.aborted) {
				events.response("timeout", seconds);
				return errorResponse(504, "origin_timeout", "The agent backend did not answer in time.");
			}
			events.response("unreachable", seconds);
			return errorResponse(502, "origin_unreachable", "The agent backend could not be reached.");
		} finally {
			clearTimeout(timer);
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
		return answer;
	};
};

function forwardedRequestHeaders(incoming: Headers, originToken: string | null): Headers {
	const headers = withoutHopByHop(incoming);
	for (const name of GATEWAY_OWNED) headers.delete(name);
	for (const name of [...headers.keys()]) if (name.startsWith("x-forwarded-")) headers.delete(name);
	headers.set("X-Auth-Mode", "hmac");
	const clientIp = incoming.get("cf-connecting-ip");
	if (clientIp !== null) headers.set("X-Forwarded-For", clientIp);
	if (originToken !== null) headers.set("X-Gateway-Token", originToken);
	return headers;
}

function withoutHopByHop(source: Headers): Headers {
	return dropHopByHop(new Headers(source));
}

/** Deletes the hop-by-hop headers, and those `Connection` lists, in place. */
function dropHopByHop(headers: Headers): Headers {
	const listed = headers.get("connection");
	if (listed !== null) for (const name of listed.split(",")) headers.delete(name.trim());
	for (const name of HOP_BY_HOP) headers.delete(name);
	return headers;
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
