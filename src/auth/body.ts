export type BodyReadResult =
	| { ok: true; bytes: Uint8Array<ArrayBuffer> }
	| { ok: false; reason: "too_large" | "incomplete" };

const EMPTY = new Uint8Array(0);

/**
 * The body length a request declares, or null when it must be counted: Content-Length is
 * trusted only without Transfer-Encoding (as Hono's body-limit does).
 */
export function declaredLength(headers: Pick<Headers, "get" | "has">): number | null {
	const declared = headers.get("content-length");
	if (declared === null || headers.has("transfer-encoding")) return null;
	const length = Number(declared);
	return Number.isFinite(length) && length >= 0 ? length : null;
}

/** True when a request says it carries a body: a Transfer-Encoding, or a Content-Length above 0. */
export function declaresBody(headers: Pick<Headers, "get" | "has">): boolean {
	return headers.has("transfer-encoding") || (declaredLength(headers) ?? 0) > 0;
}

/**
 * Reads a request body to bytes, refusing more than `maxBytes`: a declared length over the
 * limit without reading, otherwise the stream is counted and cancelled as soon as it passes it.
 */
export async function readBodyWithLimit(request: Request, maxBytes: number): Promise<BodyReadResult> {
	const length = declaredLength(request.headers);
	if (length !== null) {
		if (length > maxBytes) return { ok: false, reason: "too_large" };
		// A declared length within the limit: the runtime's framing delivers exactly that many
		// bytes, so one native read is enough (cheaper than pumping the stream in JS).
		if (Number.isInteger(length) && request.body !== null) {
			try {
				return { ok: true, bytes: new Uint8Array(await request.arrayBuffer()) };
			} catch {
				return { ok: false, reason: "incomplete" };
			}
		}
	}
	if (request.body === null) return { ok: true, bytes: EMPTY };

	const chunks: Uint8Array[] = [];
	let total = 0;
	try {
		const reader = request.body.getReader();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			total += value.byteLength;
			if (total > maxBytes) {
				await reader.cancel().catch(() => {});
				return { ok: false, reason: "too_large" };
			}
			chunks.push(value);
		}
	} catch {
		return { ok: false, reason: "incomplete" };
	}
	if (chunks.length === 1) return { ok: true, bytes: chunks[0] as Uint8Array<ArrayBuffer> };
	const bytes = new Uint8Array(total);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return { ok: true, bytes };
}
