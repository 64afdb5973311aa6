// The origin's address never reaches a client: docs/design.md, "Forwarding".

/**
 * Where references in an answer are resolved to tell a relative one (its host stays this one)
 * from an absolute or scheme-relative one. `.invalid` is reserved: no origin is named so.
 */
const RELATIVE_BASE = "https://relative.invalid/";
const RELATIVE_HOST = "relative.invalid";
/** `Refresh: <delay>[;,] [url=]<url>`, the URL optionally quoted (HTML's "shared declarative refresh steps"). */
const REFRESH = /^(\s*[\d.]+)\s*(?:[;,]\s*|\s+)(?:url\s*=\s*)?(["']?)(.*?)\2\s*$/is;

/** The origin as answers are compared with it. */
export interface OriginAddress {
	/** Normalised with `normaliseHost`. */
	host: string;
	/** `ORIGIN_URL`'s own path without a trailing slash ("" for none): a client never sees it. */
	basePath: string;
	/** The host as a name of its own anywhere in a value, in any letter case, with a trailing dot or a port. */
	mention: RegExp;
}

export function originAddress(originUrl: string): OriginAddress {
	const url = new URL(originUrl);
	const host = normaliseHost(url.hostname);
	return { host, basePath: url.pathname.replace(/\/+$/, ""), mention: mentionOf(host) };
}

/**
 * A pattern that finds `host` where it stands as a host: not inside a longer name (`myorigin.test`,
 * `origin.test.example`, a subdomain), with trailing dots allowed. An IPv4 host is also found in
 * its IPv4-mapped IPv6 spelling (`::ffff:7f00:1`); the dotted one contains it already.
 */
function mentionOf(host: string): RegExp {
	const spellings = [host.replace(/^\[(.*)\]$/, "$1")];
	const ipv4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
	if (ipv4 !== null) {
		const [a, b, c, d] = ipv4.slice(1).map(Number) as [number, number, number, number];
		spellings.push(`ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
	}
	const escaped = spellings.map((spelling) => spelling.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
	// Trailing dots are the host's; a dot and a name after them (`origin.test.example`) are another host.
	return new RegExp(`(?<![a-z0-9._-])(?:${escaped.join("|")})\\.*(?![a-z0-9_.-])`, "i");
}

/**
 * A host as a client would reach it: lowercase, without a trailing dot, an IPv4-mapped IPv6
 * address (`[::ffff:7f00:1]`) as its IPv4 address. `new URL` has already made other IPv4
 * spellings (`0x7f.1`, `2130706433`) dotted and IPv6 compressed.
 */
export function normaliseHost(hostname: string): string {
	const host = hostname.toLowerCase().replace(/\.+$/, "");
	const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
	if (mapped === null) return host;
	const high = Number.parseInt(mapped[1]!, 16);
	const low = Number.parseInt(mapped[2]!, 16);
	return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** Answer headers whose URLs on the origin are rewritten to gateway paths (cookies: their `Domain`), not dropped outright. */
export const REFERENCE_HEADERS: ReadonlySet<string> = new Set(["location", "content-location", "link", "refresh", "set-cookie"]);

/**
 * Rewrites in place the headers of `REFERENCE_HEADERS`: `Location` and `Content-Location` on the
 * origin's host (any scheme or port) become a path on the gateway, as do the `Link` URLs on it
 * and a `Refresh` URL; a `Set-Cookie` `Domain` attribute naming the host is removed (the cookie
 * then belongs to the gateway's host, the one the client asked). Then each of them whose value
 * still names the origin's host is dropped: two values joined by the runtime, a URL no parser
 * reads, a `Link` parameter, a cookie's value. (Every other header naming it is dropped whole
 * by the answer's builder: `forward-answer.ts`.)
 */
export function rewriteOriginReferences(headers: Headers, origin: OriginAddress): void {
	for (const name of ["location", "content-location"]) {
		const value = headers.get(name);
		if (value === null) continue;
		const path = gatewayPath(value, origin);
		if (path !== null) headers.set(name, path);
	}
	const link = headers.get("link");
	if (link !== null) {
		const rewritten = link.replace(LINK_TARGET, (whole, reference: string) => {
			const path = gatewayPath(reference, origin);
			return path === null ? whole : `<${path}>`;
		});
		if (rewritten !== link) headers.set("link", rewritten);
	}
	const refresh = headers.get("refresh");
	if (refresh !== null) {
		const rewritten = rewriteRefresh(refresh, origin);
		if (rewritten === null) headers.delete("refresh");
		else if (rewritten !== refresh) headers.set("refresh", rewritten);
	}
	if (headers.has("set-cookie")) rewriteCookies(headers, origin);
	for (const name of ["location", "content-location", "link", "refresh"]) {
		const value = headers.get(name);
		if (value !== null && namesOrigin(value, origin)) headers.delete(name);
	}
}

/** `Link`'s URI references: `<...>` (RFC 8288). */
const LINK_TARGET = /<([^>]*)>/g;

/** Whether a header value names the origin's host, as a name of its own, an authority, or percent-encoded. */
export function namesOrigin(value: string, origin: OriginAddress): boolean {
	if (origin.mention.test(value)) return true;
	if (/[\\/]{2}/.test(value) && spellsOrigin(value, origin)) return true;
	if (!value.includes("%")) return false;
	try {
		const decoded = decodeURIComponent(value);
		return decoded !== value && namesOrigin(decoded, origin);
	} catch {
		return false;
	}
}

/** An authority (`//host`, or `\\host` as a browser reads it) anywhere in a header value. */
const AUTHORITY = /[\\/]{2}([^\\/?#\s"'<>,;]+)/g;

/** Whether a header value names the origin's host as an authority anywhere, in any spelling a URL parser reads. */
function spellsOrigin(value: string, origin: OriginAddress): boolean {
	for (const [, authority] of value.matchAll(AUTHORITY)) {
		if (authorityHost(authority!) === origin.host) return true;
	}
	return false;
}

/** An authority's normalised host; one `new URL` refuses (`host%3A8080`) is read percent-decoded, without userinfo and port. */
function authorityHost(authority: string): string {
	try {
		return normaliseHost(new URL(`http://${authority}/`).hostname);
	} catch {
		let decoded = authority;
		try {
			decoded = decodeURIComponent(authority);
		} catch {
			// A malformed escape: the raw spelling is compared.
		}
		return normaliseHost(decoded.slice(decoded.lastIndexOf("@") + 1).replace(/:\d*$/, ""));
	}
}

/**
 * The gateway path for a reference on the origin's host, without `ORIGIN_URL`'s path prefix;
 * null for a relative reference (it means the same on the gateway) or another host. The
 * reference is resolved as a browser would (backslashes, tabs and newlines included).
 */
function gatewayPath(reference: string, origin: OriginAddress): string | null {
	let target: URL;
	try {
		target = new URL(reference, RELATIVE_BASE);
	} catch {
		return null;
	}
	if (target.host === RELATIVE_HOST || normaliseHost(target.hostname) !== origin.host) return null;
	let path = target.pathname;
	const base = origin.basePath;
	if (base !== "" && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || "/";
	return path + target.search + target.hash;
}

/** The `Refresh` value with a URL on the origin made a gateway path; null when it cannot be read but names the origin. */
function rewriteRefresh(value: string, origin: OriginAddress): string | null {
	const parsed = REFRESH.exec(value);
	if (parsed === null) return namesOrigin(value, origin) ? null : value;
	const path = gatewayPath(parsed[3]!, origin);
	return path === null ? value : `${parsed[1]!.trim()}; url=${path}`;
}

/** Removes each `Domain` attribute that names the origin's host, keeping the cookies' order. */
function rewriteCookies(headers: Headers, origin: OriginAddress): void {
	const cookies = headers.getSetCookie();
	const rewritten = cookies.map((cookie) => {
		const [pair, ...attributes] = cookie.split(";");
		const kept = attributes.filter((attribute) => {
			const [name, ...rest] = attribute.split("=");
			return name!.trim().toLowerCase() !== "domain" || !namesHost(rest.join("="), origin.host);
		});
		return kept.length === attributes.length ? cookie : [pair, ...kept].join(";");
	});
	// A cookie that still names the origin (in its value, its Path) is dropped, like any other header.
	const sent = rewritten.filter((cookie) => !namesOrigin(cookie, origin));
	if (sent.length === cookies.length && sent.every((cookie, i) => cookie === cookies[i])) return;
	headers.delete("set-cookie");
	for (const cookie of sent) headers.append("set-cookie", cookie);
}

/** Whether a cookie's `Domain` value (quotes and a leading dot ignored) names `host`. */
function namesHost(domain: string, host: string): boolean {
	const name = domain.trim().replace(/^"(.*)"$/, "$1").replace(/^\./, "");
	if (name === "") return false;
	try {
		return normaliseHost(new URL(`http://${name}/`).hostname) === host;
	} catch {
		return normaliseHost(name) === host;
	}
}
