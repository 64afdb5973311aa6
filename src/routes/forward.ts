import type { MiddlewareHandler } from "hono";
import type { VerifiedVariables } from "../auth/verified.ts";
import { gatewayError } from "../errors.ts";
import type { OriginEvents } from "../events.ts";

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
	const send = options.fetch ?? ((input, init) => fetch(input, init));
	const { events } = options;

	return async function forwardToOrigin(c) {
		const request = c.req.raw;
		const { path, query, body, scheme, clientId } = c.var.verified;
		// String concatenation, never `new URL(path, base)`, which would resolve dot segments.
		const target = options.originUrl + path + query;
		const headers = forwardedRequestHeaders(request.headers, options.originToken);
		// v2 signs the client id (keyid): the origin gets that one, never a client-sent header.
		if (scheme === "v2") headers.set("X-Client-Id", clientId);

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
				throw gatewayError("origin_timeout");
			}
			events.response("unreachable", seconds);
			throw gatewayError("origin_unreachable");
		} finally {
			clearTimeout(timer);
		}
		events.response(response.status >= 500 ? "status_5xx" : "ok", (performance.now() - started) / 1000);

		const responseHeaders = withoutHopByHop(response.headers);
		responseHeaders.delete("content-length");
		responseHeaders.set("X-Auth-Mode", "hmac");
		const stream = response.body === null ? null : cutWhenIdle(response.body, options.idleMs, () => events.streamCut());
		return new Response(stream, { status: response.status, statusText: response.statusText, headers: responseHeaders });
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
	const headers = new Headers(source);
	const listed = source.get("connection");
	if (listed !== null) for (const name of listed.split(",")) headers.delete(name.trim());
	for (const name of HOP_BY_HOP) headers.delete(name);
	return headers;
}

/**
 * Passes chunks through as they arrive; when none comes for `idleMs`, or the origin's
 * stream breaks, cancels the origin and ends the answer.
 */
function cutWhenIdle(body: ReadableStream<Uint8Array>, idleMs: number, onCut: () => void): ReadableStream<Uint8Array> {
	const reader = body.getReader();
	return new ReadableStream<Uint8Array>({
		async pull(controller) {
			let timer: ReturnType<typeof setTimeout> | undefined;
			const idle = new Promise<"idle">((resolve) => {
				timer = setTimeout(() => resolve("idle"), idleMs);
			});
			try {
				const next = await Promise.race([reader.read(), idle]);
				if (next === "idle") {
					onCut();
					reader.cancel("origin idle").catch(() => {});
					controller.close();
				} else if (next.done) {
					controller.close();
				} else {
					controller.enqueue(next.value);
				}
			} catch {
				onCut();
				controller.close();
			} finally {
				if (timer !== undefined) clearTimeout(timer);
			}
		},
		cancel(reason) {
			return reader.cancel(reason);
		},
	});
}
