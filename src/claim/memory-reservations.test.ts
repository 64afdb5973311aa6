import { describe, expect, it } from "vitest";
import { MemoryReservations } from "./memory-reservations.ts";

const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const held = (clientId: string, hold: number) => ({ clientId, hold, day: "2026-12-02", month: "2026-12" });

describe("MemoryReservations: the token reservations of one isolate, settled by the settle script's rules", () => {
	it("the first report wins, counting at most the hold; a second is already_settled; an id it never gave, or another client's, is unknown", () => {
		const reservations = new MemoryReservations({ leaseMs: 1_000 });
		reservations.add("alice:-:2026-12:n1", held("alice", 100), T0);
		expect(reservations.settle("alice:-:2026-12:n1", 30, T0 + 1)).toMatchObject({ status: "settled", hold: 100, counted: 30, reservation: { clientId: "alice", day: "2026-12-02", month: "2026-12" } });
		expect(reservations.settle("alice:-:2026-12:n1", 5, T0 + 2)).toEqual({ status: "already_settled" });
		expect(reservations.settle("alice:-:2026-12:n2", 5, T0 + 2)).toEqual({ status: "unknown" });
		expect(reservations.settle("bob:-:2026-12:n1", 5, T0 + 2)).toEqual({ status: "unknown" });
		reservations.add("alice:-:2026-12:n3", held("alice", 100), T0);
		expect(reservations.settle("alice:-:2026-12:n3", 250, T0 + 3)).toMatchObject({ status: "settled", hold: 100, counted: 100 });
		// Settled, nothing was charged whole.
		expect(reservations.takeExpired()).toBe(0);
	});

	it("a report at or after its lease's end is expired, and the hold stays charged whole (counted once as expired); then it is forgotten", () => {
		const reservations = new MemoryReservations({ leaseMs: 1_000 });
		reservations.add("a:-:-:n1", held("a", 40), T0);
		expect(reservations.settle("a:-:-:n1", 1, T0 + 999)).toMatchObject({ status: "settled" });
		reservations.add("a:-:-:n2", held("a", 70), T0);
		expect(reservations.settle("a:-:-:n2", 1, T0 + 1_000)).toEqual({ status: "expired" });
		expect(reservations.takeExpired()).toBe(70);
		expect(reservations.takeExpired()).toBe(0);
		expect(reservations.settle("a:-:-:n2", 1, T0 + 1_001)).toEqual({ status: "unknown" });
	});

	it("drops each at its lease's end, oldest first: an unreported hold is counted as expired, a settled one is not", () => {
		const reservations = new MemoryReservations({ leaseMs: 1_000 });
		reservations.add("a:-:-:n1", held("a", 10), T0);
		reservations.add("a:-:-:n2", held("a", 20), T0 + 500);
		reservations.add("a:-:-:n3", held("a", 40), T0 + 600);
		reservations.settle("a:-:-:n2", 1, T0 + 700);
		reservations.sweep(T0 + 1_500);
		expect(reservations.size).toBe(1);
		expect(reservations.takeExpired()).toBe(10);
		expect(reservations.settle("a:-:-:n1", 1, T0 + 1_500)).toEqual({ status: "unknown" });
		expect(reservations.settle("a:-:-:n3", 1, T0 + 1_500)).toMatchObject({ status: "settled", counted: 1 });
		reservations.sweep(T0 + 1_600);
		expect(reservations.size).toBe(0);
		expect(reservations.takeExpired()).toBe(0);
	});

	it("bounded: full, it forgets the oldest (its hold stays charged whole, counted as expired; its report is unknown), never more than maxOpen", () => {
		const reservations = new MemoryReservations({ leaseMs: 60_000, maxOpen: 2 });
		reservations.add("a:-:-:n1", held("a", 11), T0);
		reservations.add("a:-:-:n2", held("a", 22), T0 + 1);
		reservations.add("a:-:-:n3", held("a", 33), T0 + 2);
		expect(reservations.size).toBe(2);
		expect(reservations.takeExpired()).toBe(11);
		expect(reservations.settle("a:-:-:n1", 1, T0 + 3)).toEqual({ status: "unknown" });
		expect(reservations.settle("a:-:-:n2", 1, T0 + 3)).toMatchObject({ status: "settled" });
		// A settled one forgotten to make room was counted already: nothing more is charged.
		reservations.add("a:-:-:n4", held("a", 44), T0 + 4);
		expect(reservations.takeExpired()).toBe(0);
		expect(reservations.settle("a:-:-:n3", 1, T0 + 5)).toMatchObject({ status: "settled", hold: 33 });
		// A lease that ended (n3's) makes room before anything live (n4) is forgotten.
		reservations.add("a:-:-:n5", held("a", 55), T0 + 60_003);
		expect(reservations.size).toBe(2);
		expect(reservations.takeExpired()).toBe(0);
		expect(reservations.settle("a:-:-:n4", 1, T0 + 60_003)).toMatchObject({ status: "settled", hold: 44 });
		expect(reservations.settle("a:-:-:n5", 1, T0 + 60_003)).toMatchObject({ status: "settled", hold: 55 });
	});

	it("remembers 10000 reservations by default: the 10001st forgets the oldest", () => {
		const reservations = new MemoryReservations({ leaseMs: 60_000 });
		for (let i = 0; i < 10_000; i++) reservations.add(`a:-:-:d${i}`, held("a", 1), T0);
		expect(reservations.size).toBe(10_000);
		expect(reservations.takeExpired()).toBe(0);
		reservations.add("a:-:-:last", held("a", 1), T0);
		expect(reservations.size).toBe(10_000);
		expect(reservations.takeExpired()).toBe(1);
		expect(reservations.settle("a:-:-:d0", 1, T0)).toEqual({ status: "unknown" });
		expect(reservations.settle("a:-:-:d1", 1, T0)).toMatchObject({ status: "settled" });
	});

	it("refuses bad options when built", () => {
		expect(() => new MemoryReservations({ leaseMs: 0 })).toThrow("leaseMs must be positive");
		expect(() => new MemoryReservations({ leaseMs: 1, maxOpen: 0 })).toThrow("maxOpen must be a positive integer");
	});
});
