import type { AuthEvents } from "./auth/events.ts";
import { Keyring } from "./auth/keyring.ts";
import { BearerTokens } from "./auth/token.ts";
import type { Config } from "./config.ts";
import type { Env } from "./env.ts";
import type { Logger } from "./log.ts";
import { GatewayMetrics, replayDegraded } from "./metrics/gateway-metrics.ts";
import { MetricsPipeline } from "./metrics/pipeline.ts";
import { CircuitBreaker } from "./replay/breaker.ts";
import { ReplayGuard, type ReplayEvents } from "./replay/guard.ts";
import { MemoryReplayStore } from "./replay/memory.ts";
import type { OriginEvents } from "./routes/forward.ts";
import { createUpstashClient, UpstashReplayStore, type ReplayRedis } from "./replay/upstash.ts";

/** What can be swapped in a test: the world outside the Worker. */
export interface GatewayDependencies {
	log: Logger;
	/** Fetch used to reach the origin. */
	fetchOrigin?: typeof fetch;
	/** An Upstash client instead of one built from the configuration. */
	upstash?: ReplayRedis;
	now?: () => number;
	/** False only in the benchmark, to measure what recording metrics costs. @default true */
	recordMetrics?: boolean;
}

/** Every event the gateway reports: the metrics record them. */
export type GatewayEvents = AuthEvents & ReplayEvents & OriginEvents;

const IGNORED_EVENTS: GatewayEvents = {
	outcome() {},
	skew() {},
	secretSlot() {},
	replayAttempt() {},
	storeCall() {},
	fallback() {},
	breakerOpened() {},
	outageReplay() {},
	response() {},
	streamCut() {},
};

/** One isolate's state for one configuration: keys, replay stores, breaker, metrics. */
export interface Gateway {
	config: Config;
	keyring: Keyring;
	replay: ReplayGuard;
	metrics: GatewayMetrics;
	/** Where the request path reports events: the metrics, unless recording is off. */
	events: GatewayEvents;
	pipeline: MetricsPipeline;
	metricsTokens: BearerTokens;
	deps: GatewayDependencies;
}

export function createGateway(config: Config, env: Env, deps: GatewayDependencies): Gateway {
	const now = deps.now ?? Date.now;
	const metrics = new GatewayMetrics();
	const events = deps.recordMetrics === false ? IGNORED_EVENTS : metrics;
	const { replay: settings } = config;
	const upstash =
		deps.upstash ?? (settings.upstash === null ? null : createUpstashClient({ ...settings.upstash, timeoutMs: settings.timeoutMs }));
	const replay = new ReplayGuard({
		primary: upstash === null ? null : new UpstashReplayStore(upstash),
		memoryOnlyIsNormal: config.isDevelopment,
		memory: new MemoryReplayStore(settings.memoryMaxKeys, now),
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
		namespace: env.METRICS_AGGREGATOR,
		flushMs: config.metrics.flushMs,
		timeoutMs: config.metrics.timeoutMs,
		shards: config.metrics.shards,
		gauges: () => ({ [replayDegraded.name]: replay.degraded ? 1 : 0 }),
		log: deps.log,
		now,
	});
	return {
		config,
		keyring: new Keyring(config.auth),
		replay,
		metrics,
		events,
		pipeline,
		metricsTokens: new BearerTokens(config.metrics.tokens),
		deps,
	};
}
