import { describe, expect, it } from "vitest";
import { BatchQueue, INGEST_VERSION, MAX_UNACKED_BATCHES } from "./delivery.ts";
import type { Samples } from "./samples.ts";

const delta = (n: number): Samples => ({ c_total: { "[]": n } });

describe("BatchQueue", () => {
	it("numbers batches from 1, one more per sealed delta, and names the isolate and the format", () => {
		const queue = new BatchQueue("iso");
		const first = queue.seal(() => delta(1), { g: 1 });
		expect(first).toEqual({ v: INGEST_VERSION, isolate: "iso", batches: [{ seq: 1, samples: delta(1), gauges: { g: 1 } }] });
		queue.acknowledge(first);
		expect(queue.seal(() => delta(2), { g: 0 }).batches.map((b) => b.seq)).toEqual([2]);
	});

	it("resends unacknowledged batches as they were, and drops only the acknowledged ones", () => {
		const queue = new BatchQueue("iso");
		const first = queue.seal(() => delta(1), {});
		const second = queue.seal(() => delta(2), {});
		expect(second.batches).toEqual([first.batches[0], { seq: 2, samples: delta(2), gauges: {} }]);
		queue.acknowledge(first);
		expect(queue.pending).toBe(1);
		queue.acknowledge(second);
		expect(queue.pending).toBe(0);
	});

	it(`while ${MAX_UNACKED_BATCHES} batches await an answer, takes no new delta: no payload ever carries more`, () => {
		const queue = new BatchQueue("iso");
		let taken = 0;
		const take = () => delta(++taken);
		for (let i = 0; i < 10; i++) expect(queue.seal(take, {}).batches.length).toBeLessThanOrEqual(MAX_UNACKED_BATCHES);
		expect(MAX_UNACKED_BATCHES).toBe(2);
		// The events that did not fit were never taken from the recorder, so nothing is lost.
		expect(taken).toBe(MAX_UNACKED_BATCHES);
		expect(queue.seal(take, {}).batches.map((b) => b.seq)).toEqual([1, 2]);
	});

	it("sends an empty batch only when nothing else is pending (so the gauges still arrive)", () => {
		const queue = new BatchQueue("iso");
		expect(queue.seal(() => ({}), { g: 3 }).batches).toEqual([{ seq: 1, samples: {}, gauges: { g: 3 } }]);
		expect(queue.seal(() => ({}), { g: 4 }).batches.map((b) => b.seq)).toEqual([1]);
	});
});
