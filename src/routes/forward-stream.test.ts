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
});
