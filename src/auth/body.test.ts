import { describe, expect, it } from "vitest";
import { declaresBody, readBodyWithLimit } from "./body.ts";

const URL_ = "https://gateway.test/agent/chat";

function streamOf(chunks: (Uint8Array | Error)[]): ReadableStream<Uint8Array> {
	let i = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (i >= chunks.length) return controller.close();
			const next = chunks[i++]!;
			if (next instanceof Error) controller.error(next);
			else controller.enqueue(next);
		},
	});
}

function streamed(chunks: (Uint8Array | Error)[], headers: Record<string, string> = {}): Request {
	return new Request(URL_, { method: "POST", body: streamOf(chunks), headers });
}

const bytes = (...values: number[]) => new Uint8Array(values);

describe("readBodyWithLimit", () => {
	it("takes a declared Content-Length equal to the limit, and refuses one byte more", async () => {
		const atLimit = await readBodyWithLimit(new Request(URL_, { method: "POST", body: "abcd" }), 4);
		expect(atLimit).toEqual({ ok: true, bytes: new TextEncoder().encode("abcd") });
		expect(await readBodyWithLimit(new Request(URL_, { method: "POST", body: "abcde" }), 4)).toEqual({ ok: false, reason: "too_large" });
	});

	it("counts a streamed body: exactly the limit passes, one byte more is too_large", async () => {
		expect(await readBodyWithLimit(streamed([bytes(1, 2), bytes(3, 4)]), 4)).toEqual({ ok: true, bytes: bytes(1, 2, 3, 4) });
		expect(await readBodyWithLimit(streamed([bytes(1, 2), bytes(3, 4, 5)]), 4)).toEqual({ ok: false, reason: "too_large" });
	});

	it("joins several chunks in order, and reads an empty stream as no bytes", async () => {
		const result = await readBodyWithLimit(streamed([bytes(1), bytes(2, 3), bytes(4, 5, 6)]), 100);
		expect(result).toEqual({ ok: true, bytes: bytes(1, 2, 3, 4, 5, 6) });
		expect(await readBodyWithLimit(streamed([bytes(7, 8)]), 100)).toEqual({ ok: true, bytes: bytes(7, 8) });
		expect(await readBodyWithLimit(streamed([]), 100)).toEqual({ ok: true, bytes: bytes() });
		expect(await readBodyWithLimit(new Request(URL_, { method: "POST" }), 100)).toEqual({ ok: true, bytes: bytes() });
	});

	it("does not trust Content-Length beside Transfer-Encoding: the stream is counted", async () => {
		const request = streamed([bytes(1, 2, 3), bytes(4, 5)], { "content-length": "1", "transfer-encoding": "chunked" });
		expect(await readBodyWithLimit(request, 3)).toEqual({ ok: false, reason: "too_large" });
	});

	it("answers incomplete for a body that fails while it is read, with or without a declared length", async () => {
		expect(await readBodyWithLimit(streamed([bytes(1), new Error("cut")]), 100)).toEqual({ ok: false, reason: "incomplete" });
		const declared = streamed([bytes(1), new Error("cut")], { "content-length": "5" });
		expect(await readBodyWithLimit(declared, 100)).toEqual({ ok: false, reason: "incomplete" });
	});
});

describe("declaresBody", () => {
	it("is true for a Transfer-Encoding, whatever the Content-Length, and for a length above 0", () => {
		expect(declaresBody(new Headers({ "transfer-encoding": "chunked" }))).toBe(true);
		expect(declaresBody(new Headers({ "transfer-encoding": "chunked", "content-length": "0" }))).toBe(true);
		expect(declaresBody(new Headers({ "content-length": "1" }))).toBe(true);
	});

	it("is false with no length, or a length of 0", () => {
		expect(declaresBody(new Headers())).toBe(false);
		expect(declaresBody(new Headers({ "content-length": "0" }))).toBe(false);
	});
});
