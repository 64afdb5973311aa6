// The answer a client gets from the origin's: docs/design.md, "Forwarding".
import { HOP_BY_HOP } from "./forward-header-names.ts";
import { namesOrigin, type OriginAddress, REFERENCE_HEADERS, rewriteOriginReferences } from "./forward-references.ts";
import { type StreamBounds, streamedBody } from "./forward-stream.ts";

/** A header name (an RFC 9110 token): `Headers.delete` throws on anything else. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Never passed on: hop-by-hop headers, `Alt-Svc` (the origin's own address, by another protocol
 * or port), and `Server` (the origin's software and version: `uvicorn`, a Python build).
 */
const NEVER_PASSED: ReadonlySet<string> = new Set([...HOP_BY_HOP, "alt-svc", "server"]);

/**
 * The client's answer: the origin's status and headers, without hop-by-hop ones, `Alt-Svc`,
 * `Server`, or anything naming the origin, with `X-Auth-Mode: hmac` (never the origin's own). An answer of
 * known length (and not re-encoded by the runtime), or without a body, keeps the origin's own
 * body; a streamed one gets the bounds set for it (none by default: the origin's body as it is),
 * and loses a Content-Length it could no longer keep if cut.
 *
 * The origin's headers are read in one pass, and the copy the client gets is edited only where
 * that pass found something (a header costs a native call each way).
 */
export function clientAnswer(response: Response, origin: OriginAddress, bounds: StreamBounds): Response {
	const dropped: string[] = [];
	let listed: string | null = null;
	let references = false;
	let length = false;
	let encoded = false;
	for (const [name, value] of response.headers) {
		if (NEVER_PASSED.has(name)) {
			dropped.push(name);
			if (name === "connection") listed = value;
		} else if (REFERENCE_HEADERS.has(name)) {
			references = true;
		} else if (name === "content-length") {
			length = true;
		} else {
			if (name === "content-encoding") encoded = true;
			if (namesOrigin(value, origin)) dropped.push(name);
		}
	}
	const originBody = response.body;
	const whole = originBody === null || (length && !encoded);
	// The Response constructor copies the headers once; they are edited on that copy.
	const answer = new Response(whole ? originBody : streamedBody(originBody, bounds), response);
	const { headers } = answer;
	for (const name of dropped) headers.delete(name);
	if (listed !== null) dropListed(headers, listed);
	if (length && !whole) headers.delete("content-length");
	if (references) rewriteOriginReferences(headers, origin);
	headers.set("X-Auth-Mode", "hmac");
	return answer;
}

/** Deletes the headers an answer's `Connection` header lists (hop-by-hop by its say). */
function dropListed(headers: Headers, listed: string): void {
	for (const raw of listed.split(",")) {
		const name = raw.trim();
		if (HEADER_NAME.test(name)) headers.delete(name);
	}
}
