import { Keyring, type KeySource } from "./auth/crypto.ts";
import { BearerTokens } from "./auth/token.ts";
import type { Config } from "./config.ts";
import type { Env } from "./env.ts";
import type { GatewayEvents } from "./events.ts";
import type { Logger } from "./log.ts";
import { readEntry } from "./limits/config.ts";
import { LimitPolicies, type RecordLimits } from "./limits/policy.ts";
import { gatewayRegistry, replayDegraded } from "./metrics/families.ts";
import { GatewayMetrics } from "./metrics/gateway-metrics.ts";
import { aggregatorShards, MetricsPipeline } from "./metrics/pipeline.ts";
import { keyringKeySource } from "./keyring/key-source.ts";
import { CircuitBreaker } from "./claim/breaker.ts";
import { ReplayGuard } from "./claim/guard.ts";
import { MemoryReplayStore } from "./claim/memory.ts";
import { createUpstashClient, UpstashReplayStore, type ReplayRedis } from "./claim/upstash.ts";
import { MemoryLimitedStore } from "./claim/memory-limited.ts";
import { MemoryLimiter } from "./claim/memory-limiter.ts";
import { RedisLimitStore, type LimitRedis } from "./claim/redis-limits.ts";
import { Settlements } from "./claim/settle.ts";
import type { LimitedClaimStore } from "./claim/store.ts";

/** What can be swapped in a test: the world outside the Worker. */
export interface GatewayDependencies {
	log: Logger;
	/** Fetch used to reach the origin. */
	fetchOrigin?: typeof fetch;
	/** An Upstash client instead of one built from the configuration (with the limits script's commands, when it has them). */
	upstash?: ReplayRedis & Partial<LimitRedis>;
	now?: () => number;
	/** Where the request path reports its events. @default the isolate's metrics */
	events?: GatewayEvents;
}

/** One isolate's state for one configuration: keys, replay stores, breaker, metrics. */
export interface Gateway {
	config: Config;
	/** Each client's keys: the keyring in KV (when `KEYRING_KEY` is set) in front of `HMAC_CLIENTS`/`HMAC_SECRET`. */
	keyring: KeySource;
	replay: ReplayGuard;
	/**
	 * Where claims under a client's limits are made, and each client's policy (`CLIENT_LIMITS`,
	 * or its keyring record's); null with neither (no limits, no cost).
	 */
	limits: { primary: LimitedClaimStore | null; memory: LimitedClaimStore; policies: LimitPolicies } | null;
	/** Settles token reservations from the origin's reports (docs/design.md, "Token budgets"). */
	settlements: Settlements;
	/** `ORIGIN_TOKEN`, for the usage route (none: it answers 404). */
	originTokens: BearerTokens;
	metrics: GatewayMetrics;
	/** Where the request path reports events: the metrics, unless others were injected. */
	events: GatewayEvents;
	pipeline: MetricsPipeline;
	metricsTokens: BearerTokens;
	deps: GatewayDependencies;
}

export function createGateway(config: Config, env: Env, deps: GatewayDependencies): Gateway {
	const now = deps.now ?? Date.now;
	const metrics = new GatewayMetrics(gatewayRegistry, config.limits?.labelledClients ?? []);
	const events = deps.events ?? metrics;
	const { replay: settings } = config;
	const upstash =
		deps.upstash ?? (settings.upstash === null ? null : createUpstashClient({ ...settings.upstash, timeoutMs: settings.timeoutMs }));
	const memory = new MemoryReplayStore(settings.memoryMaxKeys, now);
	const keyring = keyringKeySource(config.keyring, env.KEYRING, new Keyring(config.auth), { events, log: deps.log, now });
	// Keyring records may carry limits too (docs/design.md, "Keyring"): with records that open, a client may have some.
	const records = "limitsFor" in keyring && config.keyring.keys.length > 0 ? (keyring as RecordLimits) : null;
	const limits = config.limits === null && records === null ? null : limitStores(limitRedisOf(upstash), memory, config, records, deps.log, now);
	const replay = new ReplayGuard({
		primary: upstash === null ? null : new UpstashReplayStore(upstash),
		memoryOnlyIsNormal: config.isDevelopment,
		memory,
		...(limits === null ? {} : { limits }),
		breaker: new CircuitBreaker({ failureThreshold: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs, now }),
		failMode: settings.failMode,
		budgetFailMode: settings.budgetFailMode,
		prefix: settings.prefix,
		ttlSeconds: settings.ttlSeconds,
		maxSkewMs: config.auth.maxSkewMs,
		events,
		log: deps.log,
		now,
	});
	const pipeline = new MetricsPipeline({
		metrics,
		aggregator: aggregatorShards(env.METRICS_AGGREGATOR),
		flushMs: config.metrics.flushMs,
		timeoutMs: config.metrics.timeoutMs,
		shards: config.metrics.shards,
		gauges: () => ({ [replayDegraded.name]: replay.degraded ? 1 : 0 }),
		log: deps.log,
		now,
	});
	return {
		config,
		keyring,
		replay,
		limits,
		metrics,
		events,
		pipeline,
		metricsTokens: new BearerTokens(config.metrics.tokens),
		settlements: new Settlements({ stores: { primary: limits?.primary ?? null, memory: limits?.memory ?? null }, rides: limits?.primary?.rides ?? null, events, log: deps.log, now }),
		originTokens: new BearerTokens(config.origin.token === null ? [] : [config.origin.token]),
		deps,
	};
}

/**
 * How long an answer's token report waits for its client's next claim in this isolate to carry
 * it before it is sent alone (docs/design.md, "Token budgets"): a second more that the unspent
 * part of a hold may stay held, against a command for the reports of a client whose requests
 * come less than once a second in an isolate (at 250 ms, a busy bench client's 2 to 4% went alone).
 */
const SETTLE_RIDE_MS = 1_000;

/**
 * Where claims under a client's limits are made (docs/design.md, "Per-client limits"): the
 * limits script in Upstash (null without Upstash: the memory limiter is the limiter), and this
 * isolate's memory; and each client's policy.
 */
function limitStores(redis: LimitRedis | null, memory: MemoryReplayStore, config: Config, records: RecordLimits | null, log: Logger, now: () => number) {
	const leaseMs = slotLeaseMs(config.origin);
	const prefix = config.replay.prefix;
	// A token reservation waits a minute past the longest answer for the origin's report (docs/design.md, "Token budgets").
	const reservationLeaseMs = leaseMs + 60_000;
	return {
		primary: redis === null ? null : new RedisLimitStore(redis, { prefix, leaseMs, reservationLeaseMs, rideWaitMs: SETTLE_RIDE_MS, now }),
		memory: new MemoryLimitedStore(memory, new MemoryLimiter({ leaseMs }), now, { reservationLeaseMs }),
		policies: new LimitPolicies(config.limits, records, readEntry, log, now),
	};
}

/**
 * How long a `concurrent` slot is held when its release never comes (an isolate that died):
 * the wait for the origin's response headers (`ORIGIN_TIMEOUT_MS`) plus the longest answer the
 * gateway lets run (`ORIGIN_STREAM_MAX_MS`), so a live answer never outlasts its slot
 * (docs/design.md, "Per-client limits").
 */
export function slotLeaseMs(origin: { timeoutMs: number; streamMaxMs: number }): number {
	return origin.timeoutMs + origin.streamMaxMs;
}

/** The client's script commands, when it has them (a test's fake may not). */
function limitRedisOf(upstash: (ReplayRedis & Partial<LimitRedis>) | null): LimitRedis | null {
	if (upstash === null || upstash.evalsha === undefined || upstash.eval === undefined || upstash.zrem === undefined) return null;
	return upstash as LimitRedis;
}
