export type BreakerState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
	/** Consecutive failures that open the breaker (`REPLAY_BREAKER_FAILURES`). */
	failureThreshold: number;
	/** How long it stays open before one probe is let through (`REPLAY_BREAKER_COOLDOWN_MS`). */
	cooldownMs: number;
	now?: () => number;
}

/**
 * Stops calling a failing dependency for a cool-down, so an outage does not cost every
 * request a timeout; then lets exactly one probe through, whose success closes it. One outage
 * opens it once: the failures of calls that went out before it opened change nothing (nor the
 * cool-down), and a failed probe keeps it open for another cool-down without a new opening.
 */
export class CircuitBreaker {
	private failures = 0;
	private openedAt = 0;
	private probing = false;
	private readonly now: () => number;

	private readonly options: CircuitBreakerOptions;

	constructor(options: CircuitBreakerOptions) {
		this.options = options;
		if (options.failureThreshold < 1) throw new Error("CircuitBreaker: failureThreshold must be at least 1");
		if (options.cooldownMs < 1) throw new Error("CircuitBreaker: cooldownMs must be at least 1");
		this.now = options.now ?? Date.now;
	}

	get state(): BreakerState {
		if (this.failures < this.options.failureThreshold) return "closed";
		return this.now() - this.openedAt >= this.options.cooldownMs ? "half_open" : "open";
	}

	/** Whether a call may go out now; in half-open, only one at a time. */
	tryAcquire(): boolean {
		const state = this.state;
		if (state === "closed") return true;
		if (state === "open" || this.probing) return false;
		this.probing = true;
		return true;
	}

	recordSuccess(): void {
		this.failures = 0;
		this.probing = false;
	}

	/** Counts a failed call; true when this failure opened the breaker (closed to open). */
	recordFailure(): boolean {
		const state = this.state;
		if (state === "closed") {
			this.failures++;
			if (this.failures < this.options.failureThreshold) return false;
			this.openedAt = this.now();
			return true;
		}
		// Half-open: the probe failed, another cool-down. Open: a call that went out before it opened.
		if (state === "half_open" && this.probing) {
			this.probing = false;
			this.openedAt = this.now();
		}
		return false;
	}
}
