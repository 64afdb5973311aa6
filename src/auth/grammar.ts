/** Header and path grammars of scheme v1 (docs/design.md, "Scheme v1"), applied after the runtime's normalization. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
export const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
export const AGENT_PATH_PATTERN = /^\/agent(\/[A-Za-z0-9._~-]+)+\/?$/;

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
