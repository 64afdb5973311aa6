// The gateway's metric families, in exposition order, and the registry of them
// (README.md, "Metrics", lists each one with what it is for; docs/design.md, "Metrics", why).
import { counter, gauge, histogram } from "./definitions.ts";
import { Registry } from "./registry.ts";

/** Families that dashboards and alerts of the old backend already use: names, labels and buckets are fixed. */
export const chatRequests = counter("agent_chat_requests_total", "Agent chat requests by authentication result.", ["auth", "mode"]);
export const replayAttempts = counter("agent_chat_replay_attempts_total", "Signed requests refused as replays.");
export const authSkew = histogram(
	"agent_auth_skew_milliseconds",
	"Absolute clock skew of signed requests, in milliseconds.",
	[0, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000],
);

/** The gateway's own families, in base units. */
export const secretSlots = counter(
	"agent_auth_secret_slot_total",
	"Signatures verified, by position of the secret in its rotation list (0 is the newest).",
	["slot"],
);
export const authSchemes = counter(
	"agent_auth_scheme_total",
	"Requests whose signature, clock and body passed, by signature scheme (v1: X-Signature, v2: RFC 9421).",
	["scheme"],
);
export const replayStoreCalls = counter("agent_replay_store_calls_total", "Replay key claims by store and outcome.", ["store", "outcome"]);
export const replayStoreDuration = histogram(
	"agent_replay_store_duration_seconds",
	"Time of one replay key claim, in seconds.",
	[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
	["store"],
);
export const replayFallbacks = counter(
	"agent_replay_fallbacks_total",
	"Claims made in isolate memory because Upstash failed, timed out or was skipped by the open breaker.",
	["reason"],
);
export const replayBreakerOpened = counter(
	"agent_replay_breaker_opened_total",
	"Times an isolate's Upstash circuit breaker opened: once per outage (failures while it is open, and a failed probe, open nothing new).",
);
export const replayOutageReplays = counter(
	"agent_replay_outage_replays_total",
	"Claims made in isolate memory during an Upstash outage that found their key already claimed by another when written back: replays that got through.",
);
export const replayDegraded = gauge(
	"agent_replay_store_degraded",
	"Isolates, among those that reported in the last minute, whose replay claims are not in a shared store (fallback, failing closed, or no Upstash outside development).",
);
export const originDuration = histogram(
	"agent_origin_duration_seconds",
	"Time until the origin's response headers, in seconds.",
	[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
);
export const originResponses = counter("agent_origin_responses_total", "Forwarded requests by outcome at the origin.", ["outcome"]);
export const limitRefusals = counter(
	"agent_limit_refusals_total",
	"Verified requests refused by a per-client limit (429), by limit; client only for ids CLIENT_LIMITS lists with \"label\": true.",
	["client", "limit"],
);
export const tokens = counter(
	"agent_tokens_total",
	"Token budget tokens by kind: held at the way in, settled (reported by the origin, at most the hold), expired (a hold charged whole at its lease's end), overrun (reported above the hold).",
	["kind"],
);
export const metricsFlushes = counter("agent_metrics_flushes_total", "Deltas sent to the metrics aggregator, by outcome.", ["outcome"]);
export const keyringLookups = counter(
	"agent_keyring_lookups_total",
	"Keyring lookups by result: hit (a record), miss (none), undecryptable, throttled (too many unknown ids); kv_read for each KV read, kv_error for each failed one.",
	["result"],
);
export const metricsAggregated = gauge(
	"agent_metrics_aggregated",
	"1 when this scrape was answered from the aggregate of all isolates, 0 when from one isolate's own totals.",
);

export const gatewayRegistry = new Registry([
	chatRequests,
	replayAttempts,
	authSkew,
	secretSlots,
	authSchemes,
	replayStoreCalls,
	replayStoreDuration,
	replayFallbacks,
	replayBreakerOpened,
	replayOutageReplays,
	replayDegraded,
	originDuration,
	originResponses,
	limitRefusals,
	tokens,
	metricsFlushes,
	metricsAggregated,
	keyringLookups,
]);
