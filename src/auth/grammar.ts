/** The header and path grammars of scheme v1 (docs/design.md, "Scheme v1"), which v2's keyid and path share; applied after the runtime's normalization. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
export const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
export const AGENT_PATH_PATTERN = /^\/agent(\/[A-Za-z0-9._~-]+)+\/?$/;

/** The client id's and the path's grammars in words, for the refusals of both schemes (keep them beside the patterns). */
export const CLIENT_ID_RULE = "must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
export const PATH_RULE = "must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)";

const API_ALIAS_PREFIX = "/api/agent/";

/**
 * The path that is signed and forwarded: the URL's pathname byte for byte
 * (percent-encoding kept), with exactly the leading `/api` removed from `/api/agent/...`.
 */
export function signedPath(pathname: string): string {
	return pathname.startsWith(API_ALIAS_PREFIX) ? pathname.slice("/api".length) : pathname;
}

/**
 * The pathname of an absolute, already serialized URL (as `request.url` is), byte for byte
 * as `new URL(url).pathname` gives it, without parsing the whole URL.
 */
export function rawPathname(url: string): string {
	const start = url.indexOf("/", url.indexOf("://") + 3);
	if (start === -1) return "/";
	let end = url.length;
	for (let i = start; i < url.length; i++) {
		const char = url.charCodeAt(i);
		if (char === 63 /* ? */ || char === 35 /* # */) {
			end = i;
			break;
		}
	}
	return url.slice(start, end);
}
