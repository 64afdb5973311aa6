import {
	AUTH_FAILURES,
	FALLBACK_REASONS,
	LIMITS,
	ORIGIN_OUTCOMES,
	SIGNATURE_SCHEMES,
	STORE_CALL_OUTCOMES,
	STORE_NAMES,
	TEST_MODES,
	type AuthOutcome,
	type FallbackReason,
	type Limit,
	type GatewayEvents,
	type OriginOutcome,
	type SignatureScheme,
	type StoreCallOutcome,
	type StoreName,
} from "../events.ts";
import { KEYRING_LOOKUP_RESULTS, type KeyringLookupEvent } from "../keyring/events.ts";
import { counter, gauge, histogram } from "./definitions.ts";
import { Recorder, Registry, type SeriesHandle } from "./registry.ts";
import type { Samples } from "./samples.ts";

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
export const replayBreakerOpened = counter("agent_replay_breaker_opened_total", "Times the Upstash circuit breaker opened.");
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
	metricsFlushes,
	metricsAggregated,
	keyringLookups,
]);

/** Every `auth`/`mode` pair the gateway can emit, from the same arrays as the events' types. */
const AUTH_OUTCOMES: readonly AuthOutcome[] = [
	["ok", "real"],
	...TEST_MODES.map((mode): AuthOutcome => ["bypass", mode]),
	...AUTH_FAILURES.map((mode): AuthOutcome => ["fail", mode]),
];
export const FLUSH_OUTCOMES = ["ok", "error", "timeout"] as const;
export type FlushOutcome = (typeof FLUSH_OUTCOMES)[number];
const MAX_SLOTS = 3;

/**
 * Records the gateway's events into one isolate's `Recorder`. Every series a scrape can
 * show is resolved here once, so the request path never builds a label key.
 */
export class GatewayMetrics implements GatewayEvents {
	readonly recorder = new Recorder();
	private readonly requests = new Map<string, SeriesHandle>();
	private readonly storeCalls = new Map<string, SeriesHandle>();
	private readonly storeDurations = new Map<string, SeriesHandle>();
	private readonly fallbacks = new Map<string, SeriesHandle>();
	private readonly origins = new Map<string, SeriesHandle>();
	private readonly flushes = new Map<string, SeriesHandle>();
	private readonly slots: SeriesHandle[] = [];
	private readonly schemes = new Map<string, SeriesHandle>();
	private readonly refusals = new Map<string, SeriesHandle>();
	private readonly keyringResults = new Map<string, SeriesHandle>();
	private readonly replayAttemptsSeries: SeriesHandle;
	private readonly skewSeries: SeriesHandle;
	private readonly breakerOpenedSeries: SeriesHandle;
	private readonly outageReplaysSeries: SeriesHandle;
	private readonly originDurationSeries: SeriesHandle;
	/** Every series at zero, laid under each answer so all are present before the first event. */
	readonly primed: Samples;

	readonly registry: Registry;

	/** `limitLabels`: the client ids the operator listed as labels of the limit refusals (primed too). */
	constructor(registry: Registry = gatewayRegistry, limitLabels: readonly string[] = []) {
		this.registry = registry;
		const all: SeriesHandle[] = [];
		const resolve = (map: Map<string, SeriesHandle>, key: string, handle: SeriesHandle) => {
			map.set(key, handle);
			all.push(handle);
		};
		for (const [auth, mode] of AUTH_OUTCOMES) resolve(this.requests, `${auth}/${mode}`, registry.series(chatRequests, { auth, mode }));
		for (const store of STORE_NAMES) {
			for (const outcome of STORE_CALL_OUTCOMES) resolve(this.storeCalls, `${store}/${outcome}`, registry.series(replayStoreCalls, { store, outcome }));
			resolve(this.storeDurations, store, registry.series(replayStoreDuration, { store }));
		}
		for (const reason of FALLBACK_REASONS) resolve(this.fallbacks, reason, registry.series(replayFallbacks, { reason }));
		for (const outcome of ORIGIN_OUTCOMES) resolve(this.origins, outcome, registry.series(originResponses, { outcome }));
		for (const scheme of SIGNATURE_SCHEMES) resolve(this.schemes, scheme, registry.series(authSchemes, { scheme }));
		for (const client of ["", ...limitLabels]) {
			for (const limit of LIMITS) resolve(this.refusals, `${client}/${limit}`, registry.series(limitRefusals, { client, limit }));
		}
		for (const outcome of FLUSH_OUTCOMES) resolve(this.flushes, outcome, registry.series(metricsFlushes, { outcome }));
		for (const result of KEYRING_LOOKUP_RESULTS) resolve(this.keyringResults, result, registry.series(keyringLookups, { result }));
		for (let slot = 0; slot < MAX_SLOTS; slot++) {
			const handle = registry.series(secretSlots, { slot: String(slot) });
			this.slots.push(handle);
			all.push(handle);
		}
		this.replayAttemptsSeries = registry.series(replayAttempts);
		this.skewSeries = registry.series(authSkew);
		this.breakerOpenedSeries = registry.series(replayBreakerOpened);
		this.outageReplaysSeries = registry.series(replayOutageReplays);
		this.originDurationSeries = registry.series(originDuration);
		all.push(this.replayAttemptsSeries, this.skewSeries, this.breakerOpenedSeries, this.outageReplaysSeries, this.originDurationSeries);
		this.primed = registry.zeros(all);
	}

	outcome(...[auth, mode]: AuthOutcome): void {
		this.recorder.inc(this.requests.get(`${auth}/${mode}`)!);
	}

	skew(milliseconds: number): void {
		this.recorder.observe(this.skewSeries, milliseconds);
	}

	secretSlot(slot: number): void {
		const handle = this.slots[slot];
		if (handle !== undefined) this.recorder.inc(handle);
	}

	scheme(scheme: SignatureScheme): void {
		this.recorder.inc(this.schemes.get(scheme)!);
	}

	replayAttempt(): void {
		this.recorder.inc(this.replayAttemptsSeries);
	}

	storeCall(store: StoreName, outcome: StoreCallOutcome, seconds: number): void {
		this.recorder.inc(this.storeCalls.get(`${store}/${outcome}`)!);
		this.recorder.observe(this.storeDurations.get(store)!, seconds);
	}

	fallback(reason: FallbackReason): void {
		this.recorder.inc(this.fallbacks.get(reason)!);
	}

	outageReplay(): void {
		this.recorder.inc(this.outageReplaysSeries);
	}

	breakerOpened(): void {
		this.recorder.inc(this.breakerOpenedSeries);
	}

	response(outcome: Exclude<OriginOutcome, "stream_cut" | "stream_deadline">, seconds: number): void {
		this.recorder.inc(this.origins.get(outcome)!);
		this.recorder.observe(this.originDurationSeries, seconds);
	}

	streamCut(reason: "idle" | "deadline"): void {
		this.recorder.inc(this.origins.get(reason === "deadline" ? "stream_deadline" : "stream_cut")!);
	}

	limitRefused(limit: Limit, label: string): void {
		// A label the configuration did not list (it cannot happen) counts without one.
		this.recorder.inc(this.refusals.get(`${label}/${limit}`) ?? this.refusals.get(`/${limit}`)!);
	}

	flush(outcome: FlushOutcome): void {
		this.recorder.inc(this.flushes.get(outcome)!);
	}

	keyringLookup(result: KeyringLookupEvent): void {
		this.recorder.inc(this.keyringResults.get(result)!);
	}
}
