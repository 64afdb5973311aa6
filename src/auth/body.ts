export type BodyReadResult =
	| { ok: true; bytes: Uint8Array<ArrayBuffer> }
	| { ok: false; reason: "too_large" | "incomplete" };

const EMPTY = new Uint8Array(0);

/**
 * Reads a request body to bytes, refusing more than `maxBytes`. Content-Length is
 * trusted only without Transfer-Encoding (as Hono's body-limit does); otherwise the
 * stream is counted and cancelled as soon as it passes the limit.
 */
export async function readBodyWithLimit(request: Request, maxBytes: number): Promise<BodyReadResult> {
	const declared = request.headers.get("content-length");
	if (declared !== null && !request.headers.has("transfer-encoding")) {
		const length = Number(declared);
		if (Number.isFinite(length) && length > maxBytes) return { ok: false, reason: "too_large" };
		// A declared length within the limit: the runtime's framing delivers exactly that many
		// bytes, so one native read is enough (cheaper than pumping the stream in JS).
		if (Number.isInteger(length) && length >= 0 && request.body !== null) {
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
