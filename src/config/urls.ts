const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** An absolute `http://` or `https://` URL, in any letter case. */
export function isHttpUrl(value: string): boolean {
	return /^https?:\/\//i.test(value) && URL.canParse(value);
}

/**
 * A plain `http://` URL whose host is not loopback (`127.0.0.1`, `::1`, `localhost`). The
 * scheme is compared after the URL parser has lower-cased it: `HTTP://` is plain http too.
 */
export function isPlainHttpBeyondLoopback(value: string): boolean {
	if (!URL.canParse(value)) return false;
	const url = new URL(value);
	return url.protocol === "http:" && !LOOPBACK_HOSTS.has(url.hostname);
}

/** A URL with a user name or password in it (`https://user:pass@host`): the runtime's fetch sends neither. */
export function hasUserInfo(value: string): boolean {
	if (!URL.canParse(value)) return false;
	const url = new URL(value);
	return url.username !== "" || url.password !== "";
}
