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
const GATEWAY_OWNED = ["host", "content-length", "x-auth-mode", "x-gateway-token", "x-test-mode"];
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
