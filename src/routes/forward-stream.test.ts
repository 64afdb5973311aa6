import { afterEach, describe, expect, it, vi } from "vitest";
import { cutWhenIdle, type StreamCutReason } from "./forward-stream.ts";

afterEach(() => {
	vi.useRealTimers();
});

/** An origin body that sends one chunk, then nothing until cancelled. */
function stalledAfterOneChunk(): ReadableStream<Uint8Array> {
	return new ReadableStream<Uint8Array>({
		start(controller) {
			controller.enqueue(new Uint8Array([1]));
		},
	});
}

describe("cutWhenIdle, on a fake clock", () => {
	it("ends the answer once the client has waited idleMs for a chunk, not 1 ms before", async () => {
		vi.useFakeTimers();
		const cuts: StreamCutReason[] = [];
		const reader = cutWhenIdle(stalledAfterOneChunk(), 100, new AbortController().signal, (reason) => cuts.push(reason)).getReader();
		expect(await reader.read()).toEqual({ done: false, value: new Uint8Array([1]) });
		let next: unknown = "pending";
		void reader.read().then((result) => {
			next = result;
		});
		await vi.advanceTimersByTimeAsync(99);
		expect(next).toBe("pending");
		expect(cuts).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		expect(cuts).toEqual(["idle"]);
		expect(next).toEqual({ done: true, value: undefined });
	});

	it("a wait that began within a period is cut idleMs after it began, not at the end of the next period", async () => {
		vi.useFakeTimers();
		const cuts: StreamCutReason[] = [];
		const reader = cutWhenIdle(stalledAfterOneChunk(), 100, null, (reason) => cuts.push(reason)).getReader();
		// The client asks for the first chunk 60 ms in: its wait for the second begins then.
		await vi.advanceTimersByTimeAsync(60);
		expect(await reader.read()).toEqual({ done: false, value: new Uint8Array([1]) });
		void reader.read();
		await vi.advanceTimersByTimeAsync(99);
		expect(cuts).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		expect(cuts).toEqual(["idle"]);
	});

	it("measures the origin's gaps, not the client's reading: a client slower than idleMs while the origin keeps sending gets every chunk", async () => {
		vi.useFakeTimers();
		const cuts: StreamCutReason[] = [];
		// The origin sent everything at once: there is never a gap on its side.
		const chunks = Array.from({ length: 5 }, (_, i) => new Uint8Array([i]));
		const origin = new ReadableStream<Uint8Array>({
			start(controller) {
				for (const chunk of chunks) controller.enqueue(chunk);
				controller.close();
			},
		});
		const reader = cutWhenIdle(origin, 100, null, (reason) => cuts.push(reason)).getReader();
		const read: Uint8Array[] = [];
		for (;;) {
			const next = await reader.read();
			if (next.done) break;
			read.push(next.value);
			// The client takes three idle periods over each chunk.
			await vi.advanceTimersByTimeAsync(300);
		}
		expect(read).toEqual(chunks);
		expect(cuts).toEqual([]);
	});
});
