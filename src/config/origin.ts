import type { SettingReader } from "./reader.ts";
import { isHttpUrl, isPlainHttpBeyondLoopback } from "./urls.ts";

export interface OriginConfig {
	/** `ORIGIN_URL` without a trailing slash; the request path is appended by string concatenation. */
	url: string;
	/** `ORIGIN_TOKEN`, sent to the origin so it can tell gateway traffic; null when unset. */
	token: string | null;
	/** `ORIGIN_TIMEOUT_MS`, 60000 when unset. */
	timeoutMs: number;
	/** `ORIGIN_STREAM_MAX_MS`, 900000 when unset: total deadline of one origin call, a streamed answer's body included. */
	streamMaxMs: number;
	/**
	 * `ORIGIN_IDLE_MS`, the longest gap between chunks of a streamed answer, 30000 when unset;
	 * null when `disabled`: no idle cut, and the answer passes natively (docs/design.md, "Forwarding").
	 */
	idleMs: number | null;
}

/** Where signed requests go, and how long the origin may take. */
export function readOrigin(read: SettingReader): OriginConfig {
	const url = read.string("ORIGIN_URL");
	if (url === undefined) read.problem("ORIGIN_URL is required");
	else if (!isHttpUrl(url)) read.problem("ORIGIN_URL is not an http(s) URL");
	else if (/[?#]/.test(url)) read.problem("ORIGIN_URL must not have a query or fragment");
	else if (isPlainHttpBeyondLoopback(url)) read.refuseInProduction("ORIGIN_URL is plain http on a host that is not loopback");
	return {
		url: (url ?? "").replace(/\/+$/, ""),
		token: read.string("ORIGIN_TOKEN") ?? null,
		timeoutMs: read.integer("ORIGIN_TIMEOUT_MS", 60_000, { min: 1 }),
		streamMaxMs: read.integer("ORIGIN_STREAM_MAX_MS", 900_000, { min: 1 }),
		idleMs: read.string("ORIGIN_IDLE_MS") === "disabled" ? null : read.integer("ORIGIN_IDLE_MS", 30_000, { min: 1 }),
	};
}
