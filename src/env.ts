import type { MetricsAggregator } from "./metrics/aggregator.ts";

/**
 * The Worker's bindings. Every setting arrives as a string (a `[vars]` entry or a
 * secret) and is validated once per isolate by `loadConfig()`.
 */
export interface Env {
	ENVIRONMENT?: string;
	ORIGIN_URL?: string;
	ORIGIN_TOKEN?: string;
	ORIGIN_TIMEOUT_MS?: string;
	ORIGIN_IDLE_MS?: string;
	ORIGIN_STREAM_MAX_MS?: string;
	ORIGIN_FORWARD_HEADERS?: string;

	HMAC_SECRET?: string;
	E2E_SESSION_HMAC_SECRET?: string;
	HMAC_CLIENTS?: string;
	HMAC_MAX_SKEW_MS?: string;
	MAX_BODY_BYTES?: string;
	ALLOW_TEST_STUBS?: string;
	SIGNATURE_SCHEMES?: string;

	UPSTASH_REDIS_REST_URL?: string;
	UPSTASH_REDIS_REST_TOKEN?: string;
	REDIS_REPLAY_PREFIX?: string;
	REDIS_REPLAY_TTL?: string;
	REPLAY_TIMEOUT_MS?: string;
	REPLAY_FAIL_MODE?: string;
	BUDGET_FAIL_MODE?: string;
	REPLAY_BREAKER_FAILURES?: string;
	REPLAY_BREAKER_COOLDOWN_MS?: string;
	REPLAY_MEMORY_MAX_KEYS?: string;
	CLIENT_LIMITS?: string;

	METRICS_TOKEN?: string;
	METRICS_FLUSH_MS?: string;
	METRICS_TIMEOUT_MS?: string;
	METRICS_SHARDS?: string;
	METRICS_AGGREGATOR?: DurableObjectNamespace<MetricsAggregator>;

	/** The keyring (src/config/keyring.ts): client records in KV, secrets sealed under KEYRING_KEY. */
	KEYRING?: KVNamespace;
	KEYRING_KEY?: string;
	KEYRING_CACHE_MS?: string;
	KEYRING_CACHE_MAX_ENTRIES?: string;
	KEYRING_TIMEOUT_MS?: string;
}
