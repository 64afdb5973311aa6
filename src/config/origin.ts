import { GATEWAY_SET, GATEWAY_SET_PREFIX, HOP_BY_HOP, SCHEME_HEADERS } from "../routes/forward-header-names.ts";
import type { SettingReader } from "./reader.ts";
import { hasUserInfo, isHttpUrl, isPlainHttpBeyondLoopback } from "./urls.ts";

/** The longest answer whose end is watched (a `concurrent` slot) runs where ORIGIN_STREAM_MAX_MS is unset: 15 minutes. */
const WATCHED_STREAM_MAX_MS = 900_000;

export interface OriginConfig {
	/** `ORIGIN_URL` without a trailing slash; the request path is appended by string concatenation. */
	url: string;
	/** `ORIGIN_TOKEN`, sent to the origin so it can tell gateway traffic; null when unset. */
	token: string | null;
	/** `ORIGIN_TIMEOUT_MS`, 60000 when unset. */
	timeoutMs: number;
	/**
	 * `ORIGIN_STREAM_MAX_MS`, 900000 (15 minutes) when unset: the total deadline of an origin call
	 * that has one, a streamed answer's body included. Set, every call has it; unset, only one
	 * whose answer's end is watched (a `concurrent` slot), so that a slot's lease stays honest.
	 */
	streamMaxMs: number;
	/** Whether `ORIGIN_STREAM_MAX_MS` is set: every call then has the deadline (docs/design.md, "Forwarding"). */
	deadlineOnEveryCall: boolean;
	/**
	 * `ORIGIN_IDLE_MS`, the longest gap between chunks of a streamed answer; null when unset (or
	 * `disabled`): no idle cut, and no JavaScript runs per chunk.
	 */
	idleMs: number | null;
	/** `ORIGIN_FORWARD_HEADERS`: request headers the operator adds to the default list, lowercase. */
	forwardHeaders: readonly string[];
}

/** Where signed requests go, and how long the origin may take. */
export function readOrigin(read: SettingReader): OriginConfig {
	const url = read.string("ORIGIN_URL");
	if (url === undefined) read.problem("ORIGIN_URL is required");
	else if (!isHttpUrl(url)) read.problem("ORIGIN_URL is not an http(s) URL");
	else if (/[?#]/.test(url)) read.problem("ORIGIN_URL must not have a query or fragment");
	// The origin call would drop them without a word: ORIGIN_TOKEN is how the origin knows the gateway.
	else if (hasUserInfo(url)) read.problem("ORIGIN_URL must not carry a user name or password");
	else if (isPlainHttpBeyondLoopback(url)) read.refuseInProduction("ORIGIN_URL is plain http on a host that is not loopback");
	const idle = read.string("ORIGIN_IDLE_MS");
	const streamMax = read.string("ORIGIN_STREAM_MAX_MS");
	return {
		url: (url ?? "").replace(/\/+$/, ""),
		token: read.string("ORIGIN_TOKEN") ?? null,
		timeoutMs: read.integer("ORIGIN_TIMEOUT_MS", 60_000, { min: 1 }),
		streamMaxMs: read.integer("ORIGIN_STREAM_MAX_MS", WATCHED_STREAM_MAX_MS, { min: 1 }),
		deadlineOnEveryCall: streamMax !== undefined,
		// `disabled` stays accepted as unset: it meant "no idle cut" while the cut was on by default.
		// (The fallback 1 is never used: a value it stands for is a problem, and the settings refused.)
		idleMs: idle === undefined || idle === "disabled" ? null : read.integer("ORIGIN_IDLE_MS", 1, { min: 1 }),
		forwardHeaders: readForwardHeaders(read),
	};
}

/** A header name as RFC 9110 spells it (a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HOP_BY_HOP_NAMES: ReadonlySet<string> = new Set(HOP_BY_HOP);
const GATEWAY_NAMES: ReadonlySet<string> = new Set(GATEWAY_SET);
const SIGNATURE_NAMES: ReadonlySet<string> = new Set([...SCHEME_HEADERS.v1, ...SCHEME_HEADERS.v2]);

/**
 * `ORIGIN_FORWARD_HEADERS`, comma-separated: a name with `_` (a WSGI or CGI origin reads
 * `X_Gateway_Token` as `X-Gateway-Token`), a hop-by-hop name, one the gateway sets itself, or a
 * signature header (each scheme's go on when that scheme verified, never the other's) is a problem
 * naming the kind of fault, never the name.
 */
function readForwardHeaders(read: SettingReader): string[] {
	const value = read.string("ORIGIN_FORWARD_HEADERS");
	if (value === undefined) return [];
	const names = value.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
	const fault = (problem: string) => {
		read.problem(`ORIGIN_FORWARD_HEADERS ${problem}`);
		return [];
	};
	for (const name of names) {
		if (!HEADER_NAME.test(name)) return fault("has an entry that is not a header name");
		if (name.includes("_")) return fault("names a header with an underscore");
		if (HOP_BY_HOP_NAMES.has(name)) return fault("names a hop-by-hop header");
		if (GATEWAY_NAMES.has(name) || name.startsWith(GATEWAY_SET_PREFIX)) return fault("names a header the gateway sets itself");
		if (SIGNATURE_NAMES.has(name)) return fault("names a signature header (the verifying scheme's go on by themselves)");
	}
	return [...new Set(names)];
}
