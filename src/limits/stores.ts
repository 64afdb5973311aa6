import type { MemoryReplayStore } from "../replay/memory.ts";
import { slotLeaseMs } from "./lease.ts";
import { MemoryLimiter } from "./memory-limiter.ts";
import { MemoryLimitedStore } from "./memory-store.ts";
import { RedisLimitStore, type LimitRedis } from "./redis-store.ts";
import type { LimitedClaimStore } from "./store.ts";

export interface LimitStoresOptions {
	/** The Upstash client (null without Upstash: the memory limiter is the limiter). */
	redis: LimitRedis | null;
	/** The isolate's memory replay store: memory claims under limits go there too. */
	memory: MemoryReplayStore;
	prefix: string;
	origin: { timeoutMs: number; streamMaxMs: number };
	now: () => number;
}

/** Where claims under limits are made (docs/design.md, "Per-client limits"): Upstash's script, and this isolate's memory. */
export interface LimitStores {
	primary: LimitedClaimStore | null;
	memory: LimitedClaimStore;
}

export function createLimitStores(options: LimitStoresOptions): LimitStores {
	const leaseMs = slotLeaseMs(options.origin);
	const primary = options.redis === null ? null : new RedisLimitStore(options.redis, { prefix: options.prefix, leaseMs, now: options.now });
	const memory = new MemoryLimitedStore(options.memory, new MemoryLimiter({ leaseMs }), options.now);
	return { primary, memory };
}
