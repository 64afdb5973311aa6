import { Keyring, type KeySource } from "./auth/crypto.ts";
import { BearerTokens } from "./auth/token.ts";
import type { Config } from "./config.ts";
import type { Env } from "./env.ts";
import type { GatewayEvents } from "./events.ts";
import type { Logger } from "./log.ts";
import { LimitPolicies, type RecordLimits } from "./limits/policies.ts";
import { createLimitStores, type LimitStores } from "./limits/stores.ts";
import { gatewayRegistry, replayDegraded } from "./metrics/families.ts";
import { GatewayMetrics } from "./metrics/gateway-metrics.ts";
import { aggregatorShards, MetricsPipeline } from "./metrics/pipeline.ts";
import { keyringKeySource } from "./keyring/key-source.ts";
import { CircuitBreaker } from "./replay/breaker.ts";
import { ReplayGuard } from "./replay/guard.ts";
import { MemoryReplayStore } from "./replay/memory.ts";
import { createUpstashClient, UpstashReplayStore, type ReplayRedis } from "./replay/upstash.ts";
import type { LimitRedis } from "./limits/redis-store.ts";

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
	limits: (LimitStores & { policies: LimitPolicies }) | null;
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
	// Keyring records may carry limits too (docs/design.md, "Keyring"): with the keyring on, a client may have some.
	const records = "limitsFor" in keyring ? (keyring as RecordLimits) : null;
	const limits =
		config.limits === null && records === null
			? null
			: {
					...createLimitStores({ redis: limitRedisOf(upstash), memory, prefix: settings.prefix, origin: config.origin, now }),
					policies: new LimitPolicies(config.limits, records, deps.log, now),
				};
	const replay = new ReplayGuard({
		primary: upstash === null ? null : new UpstashReplayStore(upstash),
		memoryOnlyIsNormal: config.isDevelopment,
		memory,
		...(limits === null ? {} : { limits }),
		breaker: new CircuitBreaker({ failureThreshold: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs, now }),
		failMode: settings.failMode,
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
		deps,
	};
}

/** The client's script commands, when it has them (a test's fake may not). */
function limitRedisOf(upstash: (ReplayRedis & Partial<LimitRedis>) | null): LimitRedis | null {
	if (upstash === null || upstash.evalsha === undefined || upstash.eval === undefined || upstash.zrem === undefined) return null;
	return upstash as LimitRedis;
}
