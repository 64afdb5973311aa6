// The answer a client gets from the origin's: docs/design.md, "Forwarding".
import { HOP_BY_HOP } from "./forward-header-names.ts";
import { type OriginAddress, rewriteOriginReferences } from "./forward-references.ts";
import { type StreamBounds, streamedBody } from "./forward-stream.ts";

/** A header name (an RFC 9110 token): `Headers.delete` throws on anything else. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The client's answer: the origin's status and headers, without hop-by-hop ones, `Alt-Svc`, or
 * anything naming the origin, with `X-Auth-Mode: hmac` (never the origin's own). An answer of
 * known length (and not re-encoded by the runtime), or without a body, keeps the origin's own
 * body; a streamed one gets the bounds set for it (none by default: the origin's body as it is),
 * and loses a Content-Length it could no longer keep if cut.
 */
export function clientAnswer(response: Response, origin: OriginAddress, bounds: StreamBounds): Response {
	const originBody = response.body;
	const whole = originBody === null || (response.headers.has("content-length") && !response.headers.has("content-encoding"));
	// The Response constructor copies the headers once; they are edited on that copy.
	const answer = new Response(whole ? originBody : streamedBody(originBody, bounds), response);
	const { headers } = answer;
	dropHopByHop(headers);
	if (!whole) headers.delete("content-length");
	// An alternative service is the origin's own address, by another protocol or port.
	headers.delete("alt-svc");
	rewriteOriginReferences(headers, origin);
	headers.set("X-Auth-Mode", "hmac");
	return answer;
}

/** Deletes the hop-by-hop headers of an answer, and those its `Connection` header lists, in place. */
export function dropHopByHop(headers: Headers): void {
	const listed = headers.get("connection");
	if (listed !== null) {
		for (const raw of listed.split(",")) {
			const name = raw.trim();
			if (HEADER_NAME.test(name)) headers.delete(name);
		}
	}
	for (const name of HOP_BY_HOP) headers.delete(name);
}
