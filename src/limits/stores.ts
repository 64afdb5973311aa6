import type { Logger } from "../log.ts";
import type { MemoryReplayStore } from "../replay/memory.ts";
import { LogThrottle } from "../log.ts";
import { slotLeaseMs } from "./lease.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryLimitedStore } from "./memory-store.ts";
import { RedisLimitStore, type LimitRedis } from "./redis-store.ts";
import type { HeldSlot, LimitedClaimStore } from "./store.ts";

export interface LimitStoresOptions {
	/** The Upstash client (null without Upstash: the memory limiter is the limiter). */
	redis: LimitRedis | null;
	/** The isolate's memory replay store: memory claims under limits go there too. */
	memory: MemoryReplayStore;
	prefix: string;
	origin: { timeoutMs: number; streamMaxMs: number };
	log: Logger;
	now: () => number;
}

/** Where claims under limits are made (docs/design.md, "Per-client limits"), and where their slots are freed. */
export interface LimitStores {
	primary: LimitedClaimStore | null;
	memory: LimitedClaimStore;
	/** Frees a slot where it is held; a failure is logged (throttled) and left to the slot's lease. */
	release(slot: HeldSlot): Promise<void>;
}

export function createLimitStores(options: LimitStoresOptions): LimitStores {
	const leaseMs = slotLeaseMs(options.origin);
	const primary = options.redis === null ? null : new RedisLimitStore(options.redis, { prefix: options.prefix, leaseMs, now: options.now });
	const memory = new MemoryLimitedStore(options.memory, new MemoryLimiter({ leaseMs }), options.now);
	const throttle = new LogThrottle(10_000, options.now);
	return {
		primary,
		memory,
		async release(slot) {
			try {
				await (slot.store === "upstash" && primary !== null ? primary : memory).release(slot);
			} catch (error) {
				const suppressed = throttle.admit("release");
				if (suppressed !== null) {
					options.log.warn("a concurrent slot was not released: its lease frees it", { error: error instanceof Error ? error.name : "unknown", suppressed });
				}
			}
		},
	};
}
