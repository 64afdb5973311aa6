import type { MiddlewareHandler } from "hono";
import type { VerifiedRequest, VerifiedVariables } from "../auth/verified.ts";
import { gatewayError } from "../errors.ts";
import type { OriginEvents } from "../events.ts";
import { LogThrottle, type Logger } from "../log.ts";
import { clientAnswer } from "./forward-answer.ts";
import { originAddress } from "./forward-references.ts";
import {
	CLOUDFLARE_PREFIX,
	DEFAULT_FORWARDED,
	GATEWAY_SET,
	GATEWAY_SET_PREFIX,
	HOP_BY_HOP,
	NEVER_FROM_A_SIGNATURE,
	SCHEME_HEADERS,
} from "./forward-header-names.ts";

export interface ForwardOptions {
	/** `ORIGIN_URL` without a trailing slash. */
	originUrl: string;
	/** Sent as `X-Gateway-Token` when set (`ORIGIN_TOKEN`). */
	originToken: string | null;
	/** Budget for the origin's response headers (`ORIGIN_TIMEOUT_MS`). */
	timeoutMs: number;
	/** Total deadline of an origin call that has one, a streamed answer's body included (`ORIGIN_STREAM_MAX_MS`, 15 minutes where unset). */
	streamMaxMs: number;
	/** Every call has the deadline (`ORIGIN_STREAM_MAX_MS` set); else only one whose answer's end is watched. */
	deadlineOnEveryCall: boolean;
	/** Longest gap between chunks of a streamed answer (`ORIGIN_IDLE_MS`); null: no idle cut, no JavaScript per chunk. */
	idleMs: number | null;
	/** Request headers the operator forwards beside the default list (`ORIGIN_FORWARD_HEADERS`, lowercase). */
	forwardHeaders: readonly string[];
	events: OriginEvents;
	/** Where an unreachable origin and the dropped header names are logged (never a value or a secret). */
	log: Logger;
	/** The fetch that reaches the origin (a test passes a fake). @default globalThis.fetch */
	fetch?: typeof fetch;
	/** The clock of the log lines' intervals. @default Date.now */
	now?: () => number;
}

const LOG_INTERVAL_MS = 10_000;

/**
 * Forwards a request that passed the signature and replay checks (`c.var.verified`) to the
 * origin and streams the answer back as it arrives (docs/design.md, "Forwarding").
 *
 * @example
 * ```ts
 * app.all("/agent/*", forwardToOrigin({ originUrl, originToken: null, timeoutMs: 60_000, streamMaxMs: 900_000, deadlineOnEveryCall: false, idleMs: null, forwardHeaders: [], events, log }));
 * ```
 */
export const forwardToOrigin = (options: ForwardOptions): MiddlewareHandler<{ Variables: VerifiedVariables }> => {
	if (!/^https?:\/\//i.test(options.originUrl)) throw new Error("forwardToOrigin: originUrl must be an http(s) URL");
	if (!(options.timeoutMs > 0) || !(options.streamMaxMs > 0) || !(options.idleMs === null || options.idleMs > 0)) {
		throw new Error("forwardToOrigin: timeouts must be positive");
	}
	if (options.log === undefined) throw new Error("forwardToOrigin: log is required");
	const reserved = options.forwardHeaders.find((name) => name !== name.toLowerCase() || name.includes("_") || NEVER_LISTED.has(name) || name.startsWith(GATEWAY_SET_PREFIX));
	if (reserved !== undefined) throw new Error("forwardToOrigin: forwardHeaders must be lowercase names the gateway does not set itself (see src/config/origin.ts)");
	const send = options.fetch ?? ((input, init) => fetch(input, init));
	const { events, log, idleMs, streamMaxMs, deadlineOnEveryCall, originToken } = options;
	const origin = originAddress(options.originUrl);
	const originHost = new URL(options.originUrl).host;
	const throttle = new LogThrottle(LOG_INTERVAL_MS, options.now);
	const onCut = (reason: "idle" | "deadline") => events.streamCut(reason);
	const forwarded: ReadonlySet<string> = new Set([...DEFAULT_FORWARDED, ...options.forwardHeaders]);
	const dropped = new DroppedNames(log, options.now);

	return async function forwardToOrigin(c) {
		const request = c.req.raw;
		const verified = c.get("verified");
		// String concatenation, never `new URL(path, base)`, which would resolve dot segments.
		const target = options.originUrl + verified.path + verified.query;
		const headers = originHeaders(request.headers, verified, forwarded, dropped, originToken);
		// A budgeted client's hold: the most this request may spend, and the reservation the origin reports against.
		const reservation = c.var.reservation;
		if (reservation !== undefined) {
			headers["x-token-hold"] = String(reservation.hold);
			headers["x-token-reservation"] = reservation.id;
		}

		// The wait for the headers is a race with a timer, never cleared (a clearTimeout of our own
		// costs more than the rest of this function), and no signal: any signal on the fetch costs
		// 40 to 150 us of CPU a call in workerd (BENCHMARKS.md), and the answer's body must outlive
		// this wait anyway. A call that loses the race is abandoned: its late answer is cancelled.
		// The deadline, where there is one, is the fetch's signal, so it ends the answer's body too.
		const deadline = deadlineOnEveryCall || c.get("watchAnswerEnd") === true ? AbortSignal.timeout(streamMaxMs) : null;
		const started = performance.now();
		let call: Promise<Response> | undefined;
		let response: Response | undefined;
		try {
			call = send(target, {
				method: request.method,
				headers,
				body: request.method === "GET" ? null : verified.body,
				redirect: "manual",
				...(deadline === null ? {} : { signal: deadline }),
			});
			response = await Promise.race([call, new Promise<undefined>((resolve) => setTimeout(resolve, options.timeoutMs))]);
		} catch (error) {
			const seconds = (performance.now() - started) / 1000;
			if (deadline?.aborted) {
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
		if (response === undefined) {
			events.response("timeout", (performance.now() - started) / 1000);
			call?.then((late) => late.body?.cancel(), () => {}).catch(() => {});
			throw gatewayError("origin_timeout");
		}
		// A Response takes a status of 200 to 599 only: an origin's 101 or 600 is a bad answer (502), never a 500.
		if (response.status < 200 || response.status > 599) {
			events.response("unreachable", (performance.now() - started) / 1000);
			response.body?.cancel().catch(() => {});
			throw gatewayError("origin_unreachable", { detail: "The agent backend gave an answer the gateway cannot pass on." });
		}
		events.response(response.status >= 500 ? "status_5xx" : "ok", (performance.now() - started) / 1000);
		return clientAnswer(response, origin, { idleMs, deadline, onCut });
	};
};

// Which request headers reach the origin: a list, not a chase (docs/design.md, "Forwarding").

/** Dropped without a log line: what the runtime or the gateway sets in their place (or reads itself: `X-Token-Limit`), and hop-by-hop names. */
const SILENTLY_DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP, "host", "content-length", "cf-connecting-ip", "x-token-limit"]);
/** End-to-end headers the origin needs: a client's `Connection` header cannot remove them. */
const END_TO_END: ReadonlySet<string> = new Set([...SCHEME_HEADERS.v1, ...SCHEME_HEADERS.v2, "content-type", "content-encoding", "content-language", "accept"]);
const NOTHING_LISTED: ReadonlySet<string> = new Set();
const V1_HEADERS: ReadonlySet<string> = new Set(SCHEME_HEADERS.v1);
const V2_HEADERS: ReadonlySet<string> = new Set(SCHEME_HEADERS.v2);
/** What no list may name (src/config/origin.ts says why): the gateway's own, hop-by-hop, the signature headers. */
const NEVER_LISTED: ReadonlySet<string> = new Set([...GATEWAY_SET, ...HOP_BY_HOP, ...SCHEME_HEADERS.v1, ...SCHEME_HEADERS.v2]);
/** What a v2 signature's coverage never sends on: the gateway's own, v1's, the spoofable names. */
const NOT_BY_COVERAGE: ReadonlySet<string> = new Set([...GATEWAY_SET, ...HOP_BY_HOP, ...SCHEME_HEADERS.v1, ...NEVER_FROM_A_SIGNATURE]);

/**
 * The headers sent to the origin, built in one pass over the client's: those of the default list
 * and `ORIGIN_FORWARD_HEADERS`, and the signature headers of the scheme that verified (v2: with the
 * headers its signature covers, but never one the gateway sets, v1's, or a spoofable name); a
 * client's `Connection` list removes none of the end-to-end ones. Every other name is dropped, and
 * logged once. Then the gateway's own: `X-Auth-Mode`, the verified `X-Client-Id`, `X-Forwarded-For`
 * from the runtime's `CF-Connecting-IP`, `X-Gateway-Token`. A plain record, which fetch reads in
 * one native call (the runtime joins a repeated name's values, so each name comes once).
 */
export function originHeaders(incoming: Headers, verified: VerifiedRequest, forwarded: ReadonlySet<string>, dropped: DroppedNames, originToken: string | null): Record<string, string> {
	const connection = incoming.get("connection");
	// `keep-alive` and `close` list no header: the common case skips the parse.
	const listed = connection === null || connection === "keep-alive" || connection === "close" ? NOTHING_LISTED : connectionNames(connection, END_TO_END);
	const own = verified.scheme === "v1" ? V1_HEADERS : V2_HEADERS;
	const covered = verified.coveredHeaders;
	// Only names the list allows are set, and none of them has `_`: no `__proto__` can come in.
	const headers: Record<string, string> = {};
	for (const [name, value] of incoming) {
		if (forwarded.has(name) || own.has(name) || (covered.length > 0 && coveredAndSendable(name, covered))) {
			if (!listed.has(name)) headers[name] = value;
		} else if (!SILENTLY_DROPPED.has(name)) {
			dropped.note(name);
		}
	}
	dropped.report();
	headers["x-auth-mode"] = "hmac";
	headers["x-client-id"] = verified.clientId;
	const clientIp = incoming.get("cf-connecting-ip");
	if (clientIp !== null) headers["x-forwarded-for"] = clientIp;
	if (originToken !== null) headers["x-gateway-token"] = originToken;
	return headers;
}

/** A v2-covered header the origin may get: not the gateway's, v1's, Cloudflare's, a spoofable one, or one with `_`. */
function coveredAndSendable(name: string, covered: readonly string[]): boolean {
	return covered.includes(name) && !NOT_BY_COVERAGE.has(name) && !name.startsWith(GATEWAY_SET_PREFIX) && !name.startsWith(CLOUDFLARE_PREFIX) && !name.includes("_");
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

/** Names a line holds at most; the rest wait for the next line. */
const NAMES_PER_LINE = 20;
/** Names remembered as logged; past it the memory starts again (a flood of made-up names cannot grow it). */
const NAMES_REMEMBERED = 512;
/** Characters of one name in a line: a name is caller input. */
const NAME_CHARS = 64;

/**
 * The request header names dropped on the way to the origin, each logged once per isolate, in
 * lines at most one per 10 s: the name only, never a value, so an operator sees what a client
 * sends that `ORIGIN_FORWARD_HEADERS` could add.
 */
export class DroppedNames {
	private readonly logged = new Set<string>();
	private pending: string[] = [];
	private lastLine = -Infinity;
	private readonly log: Logger;
	private readonly now: () => number;

	constructor(log: Logger, now: () => number = Date.now) {
		this.log = log;
		this.now = now;
	}

	note(name: string): void {
		if (this.logged.has(name) || this.pending.length >= NAMES_PER_LINE) return;
		if (this.logged.size >= NAMES_REMEMBERED) this.logged.clear();
		this.logged.add(name);
		this.pending.push(name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}...` : name);
	}

	/** Logs the names noted since the last line, unless a line went out within the interval. */
	report(): void {
		if (this.pending.length === 0) return;
		const now = this.now();
		if (now - this.lastLine < LOG_INTERVAL_MS) return;
		this.lastLine = now;
		this.log.info("request headers not forwarded to the origin (ORIGIN_FORWARD_HEADERS adds a name)", { headers: this.pending.join(", ") });
		this.pending = [];
	}
}
