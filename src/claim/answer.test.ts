import { describe, expect, it } from "vitest";
import { releaseWhenAnswerEnds } from "./answer.ts";

function background() {
	const work: Promise<unknown>[] = [];
	return { waitUntil: (promise: Promise<unknown>) => void work.push(promise), settled: () => Promise.all(work) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("releaseWhenAnswerEnds", () => {
	it("a streamed answer holds its slot until its last chunk was read, and passes every byte", async () => {
		let released = 0;
		let push!: ReadableStreamDefaultController<Uint8Array>;
		const body = new ReadableStream<Uint8Array>({ start: (controller) => void (push = controller) });
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response(body, { status: 200, headers: { "X-Test": "1" } }), async () => void released++, ctx);
		expect(answer.status).toBe(200);
		expect(answer.headers.get("x-test")).toBe("1");
		const reader = answer.body!.getReader();
		push.enqueue(new TextEncoder().encode('{"event":1}\n'));
		expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"event":1}\n');
		await tick();
		expect(released).toBe(0);
		push.enqueue(new TextEncoder().encode('{"event":2}\n'));
		push.close();
		expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"event":2}\n');
		expect((await reader.read()).done).toBe(true);
		await ctx.settled();
		expect(released).toBe(1);
	});

	it("a client that goes away frees the slot too", async () => {
		let released = 0;
		const body = new ReadableStream<Uint8Array>({ pull: (controller) => controller.enqueue(new Uint8Array(8)) });
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response(body), async () => void released++, ctx);
		await answer.body!.cancel("client left");
		await ctx.settled();
		expect(released).toBe(1);
	});

	it("an origin body that breaks mid-answer frees the slot too", async () => {
		let released = 0;
		let push!: ReadableStreamDefaultController<Uint8Array>;
		const body = new ReadableStream<Uint8Array>({ start: (controller) => void (push = controller) });
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response(body), async () => void released++, ctx);
		const reader = answer.body!.getReader();
		push.enqueue(new Uint8Array([1]));
		expect((await reader.read()).value).toEqual(new Uint8Array([1]));
		push.error(new Error("origin connection lost"));
		await reader.read().catch(() => {});
		await ctx.settled();
		expect(released).toBe(1);
	});

	it("a client that goes away while the origin is silent frees the slot at once, and the origin is cancelled", async () => {
		let released = 0;
		let originCancelled = false;
		const silent = new ReadableStream<Uint8Array>({ start: () => {}, cancel: () => void (originCancelled = true) });
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response(silent), async () => void released++, ctx);
		await answer.body!.cancel("client left");
		await ctx.settled();
		expect(released).toBe(1);
		expect(originCancelled).toBe(true);
	});

	it("an answer of known length keeps its Content-Length; one without a body frees at once", async () => {
		let released = 0;
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response("hello", { headers: { "Content-Length": "5" } }), async () => void released++, ctx);
		expect(answer.headers.get("content-length")).toBe("5");
		expect(await answer.text()).toBe("hello");
		await ctx.settled();
		expect(released).toBe(1);

		const empty = releaseWhenAnswerEnds(new Response(null, { status: 204 }), async () => void released++, ctx);
		expect(empty.status).toBe(204);
		await ctx.settled();
		expect(released).toBe(2);
	});

	it("an encoded answer is passed on whole: its Content-Length names the encoded bytes, not the body the runtime decoded", async () => {
		let released = 0;
		const ctx = background();
		// As fetch gives it: the body already decoded (11 bytes), the header still the encoded length.
		const decoded = new Response("hello world", { headers: { "Content-Length": "4", "Content-Encoding": "gzip" } });
		const answer = releaseWhenAnswerEnds(decoded, async () => void released++, ctx);
		expect(await answer.text()).toBe("hello world");
		await ctx.settled();
		expect(released).toBe(1);
	});

	it("a failing release is swallowed (the lease frees the slot), never an unhandled rejection", async () => {
		const ctx = background();
		const answer = releaseWhenAnswerEnds(new Response("x"), () => Promise.reject(new Error("store down")), ctx);
		expect(await answer.text()).toBe("x");
		await expect(ctx.settled()).resolves.toBeDefined();
	});
});
