import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RideOutcome, RideRequest } from "./ride.ts";
import { SettleRides } from "./settle-rides.ts";

const ANY = () => true;
const idOf = (n: number, day = "2026-01-02", month = "2026-01") => `svc:${day}:${month}:${String(n).padStart(32, "0")}`;

/**
 * Settles handed over (settle `n` reports `n` tokens unless told), what each was told, which
 * were sent alone (in order, and in which commands), and every sweeper started in a request's background.
 */
function harness(options: { waitMs: number; maxWaiting?: number; sweeperMs?: number; sweeperCommands?: number }, send: { fails?: Error } = {}) {
	const numbers = new Map<string, number>();
	const settled = new Map<number, RideOutcome>();
	const alone: number[] = [];
	const commands: number[][] = [];
	const rides = new SettleRides({
		...options,
		sendAlone: async (batch) => {
			const sent = batch.map((request) => numbers.get(request.reservation)!);
			commands.push(sent);
			alone.push(...sent);
			if (send.fails !== undefined) throw send.fails;
			return batch.map((request) => ({ status: "settled", hold: 100, counted: request.tokens }));
		},
	});
	const sweepers: Promise<unknown>[] = [];
	const background = { waitUntil: (work: Promise<unknown>) => void sweepers.push(work) };
	const request = (clientId: string, n: number, tokens: number, day: string, month: string): RideRequest => {
		numbers.set(idOf(n, day, month), n);
		return { clientId, reservation: idOf(n, day, month), tokens, report: `report-${n}`, day, month, settled: (outcome) => void settled.set(n, outcome) };
	};
	const offer = (clientId: string, n: number, tokens = n, day = "2026-01-02", month = "2026-01") => rides.offer(request(clientId, n, tokens, day, month), background);
	/** Whether sweeper `i` has ended (after the microtasks already queued). */
	const ended = async (i: number) => {
		let done = false;
		void sweepers[i]!.then(() => (done = true));
		await vi.advanceTimersByTimeAsync(0);
		return done;
	};
	return { rides, settled, alone, commands, sweepers, offer, ended };
}

beforeEach(() => {
	vi.useFakeTimers();
});
afterEach(() => {
	vi.useRealTimers();
});

describe("SettleRides: settles handed over to wait for a claim of their client", () => {
	it("refuses a wait, a capacity or a sweeper's term that is not positive when it is built", () => {
		const sendAlone = async () => [];
		expect(() => new SettleRides({ waitMs: 0, sendAlone })).toThrow(/waitMs/);
		expect(() => new SettleRides({ waitMs: Number.NaN, sendAlone })).toThrow(/waitMs/);
		expect(() => new SettleRides({ waitMs: 10, maxWaiting: 0, sendAlone })).toThrow(/maxWaiting/);
		expect(() => new SettleRides({ waitMs: 10, sweeperMs: 0, sendAlone })).toThrow(/sweeperMs/);
		expect(() => new SettleRides({ waitMs: 10, sweeperMs: Number.NaN, sendAlone })).toThrow(/sweeperMs/);
		expect(() => new SettleRides({ waitMs: 10, sweeperCommands: 0, sendAlone })).toThrow(/sweeperCommands/);
		expect(() => new SettleRides({ waitMs: 10, sweeperCommands: 1.5, sendAlone })).toThrow(/sweeperCommands/);
	});

	it("a claim of the same client takes them, oldest first; what the claim found is each one's result, once; nothing is sent alone", async () => {
		const { rides, settled, alone, sweepers, offer, ended } = harness({ waitMs: 250 });
		expect([offer("svc", 1, 30), offer("svc", 2, 40), offer("other", 3, 50)]).toEqual([true, true, true]);
		expect(rides.waitingCount).toBe(3);
		expect(rides.take("nobody", ANY, 8)).toEqual([]);
		const taken = rides.take("svc", ANY, 8);
		expect(taken.map((ride) => [ride.reservation, ride.tokens, ride.report, ride.day, ride.month])).toEqual([
			[idOf(1), 30, "report-1", "2026-01-02", "2026-01"],
			[idOf(2), 40, "report-2", "2026-01-02", "2026-01"],
		]);
		expect(rides.waitingCount).toBe(1);
		expect(settled.size).toBe(0);
		taken[0]!.arrive({ status: "settled", hold: 100, counted: 30 });
		taken[1]!.arrive({ status: "already_settled" });
		// A second answer to the same ride changes nothing.
		taken[1]!.arrive({ status: "expired" });
		taken[0]!.arrive(null);
		expect([settled.get(1), settled.get(2)]).toEqual([{ status: "settled", hold: 100, counted: 30 }, { status: "already_settled" }]);
		// Taken once: a second claim finds nothing of svc's.
		expect(rides.take("svc", ANY, 8)).toEqual([]);
		expect(rides.waitingCount).toBe(1);
		// One sweeper for all three, started by the first; it lasts while `other`'s settle waits.
		expect(sweepers).toHaveLength(1);
		expect(await ended(0)).toBe(false);
		rides.take("other", ANY, 8)[0]!.arrive({ status: "unknown" });
		expect(await ended(0)).toBe(true);
		expect(alone).toEqual([]);
	});

	it("a claim takes at most `max`, and only those whose windows it holds; the others keep waiting", () => {
		const { rides, offer } = harness({ waitMs: 250 });
		for (let n = 1; n <= 3; n++) offer("svc", n);
		offer("svc", 4, 4, "2025-12-30", "2025-12");
		const today = (day: string) => day === "2026-01-02";
		expect(rides.take("svc", today, 2).map((ride) => ride.tokens)).toEqual([1, 2]);
		expect(rides.take("svc", today, 8).map((ride) => ride.tokens)).toEqual([3]);
		expect(rides.waitingCount).toBe(1);
		expect(rides.take("svc", ANY, 8).map((ride) => ride.tokens)).toEqual([4]);
	});

	it("untaken when its wait ends: sent alone by the sweeper, with all then due in one command, and the sweeper ends; the next settle handed over starts another", async () => {
		const { rides, settled, alone, commands, sweepers, offer, ended } = harness({ waitMs: 250 });
		offer("svc", 1, 30);
		offer("other", 2, 20);
		expect(sweepers).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(249);
		expect(alone).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		// Both due at once, of two clients: one command.
		expect(commands).toEqual([[1, 2]]);
		expect(settled.get(1)).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(settled.get(2)).toEqual({ status: "settled", hold: 100, counted: 20 });
		expect(await ended(0)).toBe(true);
		expect(rides.waitingCount).toBe(0);
		expect(rides.take("svc", ANY, 8)).toEqual([]);
		offer("svc", 3);
		expect(sweepers).toHaveLength(2);
		await vi.advanceTimersByTimeAsync(250);
		expect(alone).toEqual([1, 2, 3]);
		expect(await ended(1)).toBe(true);
	});

	it("each is sent alone when its own wait ends, not with an earlier one's", async () => {
		const { alone, commands, offer } = harness({ waitMs: 250 });
		offer("svc", 1);
		await vi.advanceTimersByTimeAsync(100);
		offer("svc", 2);
		await vi.advanceTimersByTimeAsync(150);
		expect(alone).toEqual([1]);
		await vi.advanceTimersByTimeAsync(99);
		expect(alone).toEqual([1]);
		await vi.advanceTimersByTimeAsync(1);
		expect(commands).toEqual([[1], [2]]);
	});

	it("those due within a quarter of the wait go with the first due; one due later waits for its own wait to end", async () => {
		const { commands, offer } = harness({ waitMs: 250 });
		offer("svc", 1);
		await vi.advanceTimersByTimeAsync(62);
		offer("other", 2);
		await vi.advanceTimersByTimeAsync(1);
		offer("third", 3);
		await vi.advanceTimersByTimeAsync(186);
		expect(commands).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		expect(commands).toEqual([[1, 2]]);
		await vi.advanceTimersByTimeAsync(62);
		expect(commands).toEqual([[1, 2]]);
		await vi.advanceTimersByTimeAsync(1);
		expect(commands).toEqual([[1, 2], [3]]);
	});

	it("one sweeper's request sends few commands (its subrequests: 50 on the free plan), however its settles are spread over their wait", async () => {
		// 100 settles of clients with no later claim, 10 ms apart: all handed over before the first is due, so one sweeper takes them on.
		const { commands, sweepers, offer } = harness({ waitMs: 1_000 });
		for (let n = 1; n <= 100; n++) {
			offer(`svc${n}`, n);
			await vi.advanceTimersByTimeAsync(10);
		}
		await vi.advanceTimersByTimeAsync(2_000);
		expect(sweepers).toHaveLength(1);
		expect(commands.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
		expect(commands.length).toBeLessThanOrEqual(5);
	});

	it("at most 64 go in one command: 130 due at once are three commands, in the order they came", async () => {
		const { commands, offer } = harness({ waitMs: 250 });
		for (let n = 1; n <= 130; n++) offer(`svc${n % 3}`, n);
		await vi.advanceTimersByTimeAsync(250);
		expect(commands.map((command) => command.length)).toEqual([64, 64, 2]);
		expect(commands.flat()).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
	});

	it("a command sent alone that fails tells each of its settles the store could not tell, with why; the sweeper ends", async () => {
		const failure = new Error("Upstash down");
		const { settled, offer, ended } = harness({ waitMs: 250 }, { fails: failure });
		offer("svc", 1);
		offer("other", 2);
		await vi.advanceTimersByTimeAsync(250);
		expect([settled.get(1), settled.get(2)]).toEqual([
			{ status: "unavailable", error: failure },
			{ status: "unavailable", error: failure },
		]);
		expect(await ended(0)).toBe(true);
	});

	it("taken before its wait ends, it is never sent alone: its result is the claim's, however late; the sweeper waits for it", async () => {
		const { rides, settled, alone, offer, ended } = harness({ waitMs: 250 });
		offer("svc", 1, 30);
		const [ride] = rides.take("svc", ANY, 8);
		await vi.advanceTimersByTimeAsync(2_000);
		expect(alone).toEqual([]);
		expect(await ended(0)).toBe(false);
		ride!.arrive({ status: "expired" });
		expect(settled.get(1)).toEqual({ status: "expired" });
		expect(await ended(0)).toBe(true);
		expect(alone).toEqual([]);
	});

	it("a claim that failed hands its settles back: sent alone at once, in their order, long before their wait ends; the rest keep waiting", async () => {
		const { rides, alone, sweepers, offer } = harness({ waitMs: 60_000 });
		for (let n = 1; n <= 3; n++) offer("svc", n);
		const taken = rides.take("svc", ANY, 2);
		for (const ride of taken) ride.arrive(null);
		expect(rides.waitingCount).toBe(3);
		await vi.advanceTimersByTimeAsync(0);
		expect(alone).toEqual([1, 2]);
		expect(rides.waitingCount).toBe(1);
		expect(rides.take("svc", ANY, 8).map((ride) => ride.tokens)).toEqual([3]);
		expect(sweepers).toHaveLength(1);
	});

	it("a sweeper takes on settles for `sweeperMs`: the next starts another, and the first ends once its own are settled, sending none before its wait ends", async () => {
		const { rides, settled, alone, sweepers, offer, ended } = harness({ waitMs: 250, sweeperMs: 1_000 });
		offer("svc", 1);
		const [carried] = rides.take("svc", ANY, 8);
		await vi.advanceTimersByTimeAsync(999);
		offer("svc", 2);
		expect(sweepers).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(1);
		offer("svc", 3);
		expect(sweepers).toHaveLength(2);
		// Settle 2 is sent alone when its own wait ends, by whichever sweeper wakes first.
		await vi.advanceTimersByTimeAsync(248);
		expect(alone).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		expect(alone).toEqual([2]);
		// The first still owes settle 1, which a claim carries: it ends when that claim answers.
		expect(await ended(0)).toBe(false);
		carried!.arrive({ status: "settled", hold: 100, counted: 1 });
		expect(settled.get(1)).toEqual({ status: "settled", hold: 100, counted: 1 });
		expect(await ended(0)).toBe(true);
		expect(await ended(1)).toBe(false);
		await vi.advanceTimersByTimeAsync(1);
		expect(alone).toEqual([2, 3]);
		expect(await ended(1)).toBe(true);
	});

	it("a sweeper that sent `sweeperCommands` commands retires too (they are its request's subrequests): the next settle starts another", async () => {
		const { rides, alone, sweepers, offer, ended } = harness({ waitMs: 250, sweeperCommands: 2 });
		offer("svc", 1);
		await vi.advanceTimersByTimeAsync(100);
		offer("svc", 2);
		// A third, carried by a claim that has not answered yet, keeps the first sweeper alive.
		offer("other", 3);
		const [carried] = rides.take("other", ANY, 8);
		await vi.advanceTimersByTimeAsync(150);
		expect(alone).toEqual([1]);
		offer("svc", 4);
		expect(sweepers).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(100);
		expect(alone).toEqual([1, 2]);
		offer("svc", 5);
		expect(sweepers).toHaveLength(2);
		await vi.advanceTimersByTimeAsync(400);
		expect(alone).toEqual([1, 2, 4, 5]);
		expect(await ended(1)).toBe(true);
		expect(await ended(0)).toBe(false);
		carried!.arrive({ status: "settled", hold: 100, counted: 3 });
		expect(await ended(0)).toBe(true);
	});

	it("by default up to 1024 wait in the isolate; the next is refused (the caller sends it alone)", () => {
		const { rides, offer } = harness({ waitMs: 250 });
		for (let n = 1; n <= 1024; n++) expect(offer(`svc${n % 7}`, n)).toBe(true);
		expect(rides.waitingCount).toBe(1024);
		expect(offer("svc", 1025)).toBe(false);
		expect(rides.waitingCount).toBe(1024);
	});

	it("full: a settle past maxWaiting is refused; room again once one is taken", () => {
		const { rides, offer } = harness({ waitMs: 250, maxWaiting: 2 });
		offer("svc", 1);
		offer("other", 2);
		expect(offer("svc", 3)).toBe(false);
		expect(rides.waitingCount).toBe(2);
		rides.take("other", ANY, 8)[0]!.arrive({ status: "unknown" });
		expect(offer("svc", 4)).toBe(true);
		expect(rides.take("svc", ANY, 8).map((ride) => ride.tokens)).toEqual([1, 4]);
	});
});
