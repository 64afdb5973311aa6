import { describe, expect, it } from "vitest";
import { SettleRides } from "./settle-rides.ts";

const ANY = () => true;
const reservation = (n: number, day = "2026-01-02", month = "2026-01") => ({ id: `svc:${day}:${month}:${String(n).padStart(32, "0")}`, day, month });
/** Whether `promise` has settled yet (after the microtasks already queued). */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
	let settled = false;
	void promise.then(() => (settled = true));
	await new Promise((resolve) => setTimeout(resolve, 0));
	return settled;
}

describe("SettleRides: settles waiting for a claim of their client", () => {
	it("refuses a wait or a capacity that is not positive when it is built", () => {
		expect(() => new SettleRides({ waitMs: 0 })).toThrow(/waitMs/);
		expect(() => new SettleRides({ waitMs: Number.NaN })).toThrow(/waitMs/);
		expect(() => new SettleRides({ waitMs: 10, maxWaiting: 0 })).toThrow(/maxWaiting/);
	});

	it("a claim of the same client takes it, oldest first, and what the claim found is the wait's answer", async () => {
		const rides = new SettleRides({ waitMs: 60_000 });
		const first = rides.wait("svc", reservation(1), 30);
		const second = rides.wait("svc", reservation(2), 40);
		const other = rides.wait("other", reservation(3), 50);
		expect(rides.waitingCount).toBe(3);
		expect(rides.take("nobody", ANY, 8)).toEqual([]);
		const taken = rides.take("svc", ANY, 8);
		expect(taken.map((ride) => [ride.reservation, ride.tokens, ride.day, ride.month])).toEqual([
			[reservation(1).id, 30, "2026-01-02", "2026-01"],
			[reservation(2).id, 40, "2026-01-02", "2026-01"],
		]);
		expect(rides.waitingCount).toBe(1);
		expect(await isSettled(first)).toBe(false);
		taken[0]!.arrive({ status: "settled", hold: 100, counted: 30 });
		taken[1]!.arrive({ status: "already_settled" });
		expect(await first).toEqual({ status: "settled", hold: 100, counted: 30 });
		expect(await second).toEqual({ status: "already_settled" });
		// Taken once: a second claim finds nothing of svc's.
		expect(rides.take("svc", ANY, 8)).toEqual([]);
		expect(await isSettled(other)).toBe(false);
		rides.take("other", ANY, 1)[0]!.arrive(null);
		expect(await other).toBeNull();
		expect(rides.waitingCount).toBe(0);
	});

	it("a claim takes at most `max`, and only those whose windows it holds; the others keep waiting", async () => {
		const rides = new SettleRides({ waitMs: 60_000 });
		for (let n = 1; n <= 3; n++) void rides.wait("svc", reservation(n), n);
		void rides.wait("svc", reservation(4, "2025-12-30", "2025-12"), 4);
		const today = (day: string) => day === "2026-01-02";
		expect(rides.take("svc", today, 2).map((ride) => ride.tokens)).toEqual([1, 2]);
		expect(rides.take("svc", today, 8).map((ride) => ride.tokens)).toEqual([3]);
		expect(rides.waitingCount).toBe(1);
		expect(rides.take("svc", ANY, 8).map((ride) => ride.tokens)).toEqual([4]);
	});

	it("untaken when the wait ends: null (send it alone), and it leaves the queue", async () => {
		const rides = new SettleRides({ waitMs: 20 });
		const waited = rides.wait("svc", reservation(1), 30);
		expect(await waited).toBeNull();
		expect(rides.waitingCount).toBe(0);
		expect(rides.take("svc", ANY, 8)).toEqual([]);
	});

	it("taken before the wait ends, it waits for the claim's answer past the wait", async () => {
		const rides = new SettleRides({ waitMs: 20 });
		const waited = rides.wait("svc", reservation(1), 30);
		const [ride] = rides.take("svc", ANY, 8);
		await new Promise((resolve) => setTimeout(resolve, 60));
		expect(await isSettled(waited)).toBe(false);
		ride!.arrive({ status: "expired" });
		expect(await waited).toEqual({ status: "expired" });
	});

	it("by default up to 1024 wait in the isolate; the next does not wait", async () => {
		const rides = new SettleRides({ waitMs: 60_000 });
		for (let n = 1; n <= 1024; n++) void rides.wait(`svc${n % 7}`, reservation(n), n);
		expect(rides.waitingCount).toBe(1024);
		const over = rides.wait("svc", reservation(1025), 1);
		expect(rides.waitingCount).toBe(1024);
		expect(await isSettled(over)).toBe(true);
		expect(await over).toBeNull();
	});

	it("full: a settle past maxWaiting does not wait (null at once); room again once one is taken", async () => {
		const rides = new SettleRides({ waitMs: 60_000, maxWaiting: 2 });
		void rides.wait("svc", reservation(1), 1);
		void rides.wait("other", reservation(2), 2);
		expect(await rides.wait("svc", reservation(3), 3)).toBeNull();
		expect(rides.waitingCount).toBe(2);
		rides.take("other", ANY, 8)[0]!.arrive(null);
		const fits = rides.wait("svc", reservation(4), 4);
		expect(rides.waitingCount).toBe(2);
		expect(rides.take("svc", ANY, 8).map((ride) => ride.tokens)).toEqual([1, 4]);
		expect(await isSettled(fits)).toBe(false);
	});
});
