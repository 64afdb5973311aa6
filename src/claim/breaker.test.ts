import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./breaker.ts";

/** Epoch milliseconds: a clock at 0 would hide a breaker that forgets when it opened. */
const T = 1_764_000_000_000;

describe("CircuitBreaker", () => {
	it("opens after N consecutive failures, lets one probe through after the cool-down, and closes on its success", () => {
		const clock = { now: T };
		const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => clock.now });
		for (let i = 0; i < 2; i++) {
			expect(breaker.tryAcquire()).toBe(true);
			breaker.recordFailure();
		}
		expect(breaker.state).toBe("closed");
		breaker.tryAcquire();
		breaker.recordFailure();
		expect(breaker.state).toBe("open");
		expect(breaker.tryAcquire()).toBe(false);
		clock.now = T + 1000;
		expect(breaker.state).toBe("half_open");
		expect(breaker.tryAcquire()).toBe(true);
		expect(breaker.tryAcquire()).toBe(false);
		breaker.recordSuccess();
		expect(breaker.state).toBe("closed");
		expect(breaker.tryAcquire()).toBe(true);
	});

	it("a failed probe opens it for another cool-down", () => {
		const clock = { now: T };
		const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: () => clock.now });
		breaker.tryAcquire();
		breaker.recordFailure();
		clock.now = T + 1500;
		expect(breaker.tryAcquire()).toBe(true);
		breaker.recordFailure();
		expect(breaker.state).toBe("open");
		clock.now = T + 2400;
		expect(breaker.tryAcquire()).toBe(false);
		clock.now = T + 2500;
		expect(breaker.tryAcquire()).toBe(true);
	});

	it("one outage opens it once: calls that went out before it opened fail after, and neither count an opening nor restart the cool-down", () => {
		const clock = { now: T };
		const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => clock.now });
		for (let i = 0; i < 10; i++) expect(breaker.tryAcquire()).toBe(true);
		const openings: boolean[] = [];
		for (let i = 0; i < 10; i++) {
			openings.push(breaker.recordFailure());
			clock.now += 50;
		}
		expect(openings).toEqual([false, false, true, false, false, false, false, false, false, false]);
		// Opened at the third failure (T + 100): the seven later ones moved nothing.
		clock.now = T + 100 + 999;
		expect(breaker.state).toBe("open");
		clock.now = T + 100 + 1000;
		expect(breaker.state).toBe("half_open");
		expect(breaker.tryAcquire()).toBe(true);
		// The probe fails: open again for a cool-down, and not counted as another opening.
		expect(breaker.recordFailure()).toBe(false);
		expect(breaker.state).toBe("open");
		clock.now += 999;
		expect(breaker.recordFailure()).toBe(false);
		clock.now += 1;
		expect(breaker.state).toBe("half_open");
		// A late failure of a call from before does not close the door on the probe: it still goes out.
		expect(breaker.recordFailure()).toBe(false);
		expect(breaker.tryAcquire()).toBe(true);
		breaker.recordSuccess();
		expect(breaker.state).toBe("closed");
		// A new outage is a new opening.
		for (let i = 0; i < 2; i++) expect(breaker.recordFailure()).toBe(false);
		expect(breaker.recordFailure()).toBe(true);
	});

	it("a success resets the count of consecutive failures", () => {
		const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000, now: () => T });
		breaker.recordFailure();
		breaker.recordSuccess();
		breaker.recordFailure();
		expect(breaker.state).toBe("closed");
	});

	it("rejects bad options when constructed", () => {
		expect(() => new CircuitBreaker({ failureThreshold: 0, cooldownMs: 1 })).toThrow(/failureThreshold/);
		expect(() => new CircuitBreaker({ failureThreshold: 1, cooldownMs: 0 })).toThrow(/cooldownMs/);
	});
});
