// Recording in one isolate (docs/design.md, "Metrics"): the gateway's events to their series
// (`GatewayMetrics`), and each series' value into this isolate's samples (`Recorder`). The whole
// of what a request costs in metrics runs in this file.
import {
	AUTH_FAILURES,
	FALLBACK_REASONS,
	KEYRING_LOOKUP_RESULTS,
	LIMITS,
	ORIGIN_OUTCOMES,
	SIGNATURE_SCHEMES,
	STORE_CALL_OUTCOMES,
	STORE_NAMES,
	TEST_MODES,
	TOKEN_KINDS,
	type AuthOutcome,
	type FallbackReason,
	type Limit,
	type GatewayEvents,
	type KeyringLookupEvent,
	type OriginOutcome,
	type SignatureScheme,
	type StoreCallOutcome,
	type StoreName,
	type TokenKind,
} from "../events.ts";
import type { MetricDefinition } from "./definitions.ts";
import * as families from "./families.ts";
import type { Registry, SeriesHandle } from "./registry.ts";
import type { HistogramValue, Samples } from "./samples.ts";

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
	/** By `client` label ("" for every id not listed), each a handle per slot. */
	private readonly slots = new Map<string, SeriesHandle[]>();
	private readonly schemes = new Map<string, SeriesHandle>();
	private readonly refusals = new Map<string, SeriesHandle>();
	private readonly keyringResults = new Map<string, SeriesHandle>();
	private readonly tokenKinds = new Map<string, SeriesHandle>();
	private readonly replayAttemptsSeries: SeriesHandle;
	private readonly skewSeries: SeriesHandle;
	private readonly breakerOpenedSeries: SeriesHandle;
	private readonly outageReplaysSeries: SeriesHandle;
	private readonly originDurationSeries: SeriesHandle;
	/** Every series at zero, laid under each answer so all are present before the first event. */
	readonly primed: Samples;

	readonly registry: Registry;

	/**
	 * `clientLabels`: the client ids the operator listed as labels (`"label": true` in
	 * `CLIENT_LIMITS`), of the limit refusals and the secret slots (primed too).
	 */
	constructor(registry: Registry = families.gatewayRegistry, clientLabels: readonly string[] = []) {
		this.registry = registry;
		const all: SeriesHandle[] = [];
		const resolve = (map: Map<string, SeriesHandle>, key: string, handle: SeriesHandle) => {
			map.set(key, handle);
			all.push(handle);
		};
		for (const [auth, mode] of AUTH_OUTCOMES) resolve(this.requests, `${auth}/${mode}`, registry.series(families.chatRequests, { auth, mode }));
		for (const store of STORE_NAMES) {
			for (const outcome of STORE_CALL_OUTCOMES) resolve(this.storeCalls, `${store}/${outcome}`, registry.series(families.replayStoreCalls, { store, outcome }));
			resolve(this.storeDurations, store, registry.series(families.replayStoreDuration, { store }));
		}
		for (const reason of FALLBACK_REASONS) resolve(this.fallbacks, reason, registry.series(families.replayFallbacks, { reason }));
		for (const outcome of ORIGIN_OUTCOMES) resolve(this.origins, outcome, registry.series(families.originResponses, { outcome }));
		for (const scheme of SIGNATURE_SCHEMES) resolve(this.schemes, scheme, registry.series(families.authSchemes, { scheme }));
		for (const client of ["", ...clientLabels]) {
			for (const limit of LIMITS) resolve(this.refusals, `${client}/${limit}`, registry.series(families.limitRefusals, { client, limit }));
		}
		for (const kind of TOKEN_KINDS) resolve(this.tokenKinds, kind, registry.series(families.tokens, { kind }));
		for (const outcome of FLUSH_OUTCOMES) resolve(this.flushes, outcome, registry.series(families.metricsFlushes, { outcome }));
		for (const result of KEYRING_LOOKUP_RESULTS) resolve(this.keyringResults, result, registry.series(families.keyringLookups, { result }));
		for (const client of ["", ...clientLabels]) {
			const handles = Array.from({ length: MAX_SLOTS }, (_, slot) => registry.series(families.secretSlots, { client, slot: String(slot) }));
			this.slots.set(client, handles);
			all.push(...handles);
		}
		this.replayAttemptsSeries = registry.series(families.replayAttempts);
		this.skewSeries = registry.series(families.authSkew);
		this.breakerOpenedSeries = registry.series(families.replayBreakerOpened);
		this.outageReplaysSeries = registry.series(families.replayOutageReplays);
		this.originDurationSeries = registry.series(families.originDuration);
		all.push(this.replayAttemptsSeries, this.skewSeries, this.breakerOpenedSeries, this.outageReplaysSeries, this.originDurationSeries);
		this.primed = zeros(all);
	}

	outcome(...[auth, mode]: AuthOutcome): void {
		this.recorder.inc(this.requests.get(`${auth}/${mode}`)!);
	}

	skew(milliseconds: number): void {
		// At most a day (docs/design.md, "Metrics"): one timestamp in a wrong unit would push the sum past 2^53.
		this.recorder.observe(this.skewSeries, Math.min(milliseconds, 86_400_000));
	}

	secretSlot(slot: number, clientId: string): void {
		// An id the operator did not list counts without a label: never caller input as a label.
		const handle = (this.slots.get(clientId) ?? this.slots.get(""))![slot];
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

	tokens(kind: TokenKind, count: number): void {
		this.recorder.inc(this.tokenKinds.get(kind)!, count);
	}

	flush(outcome: FlushOutcome): void {
		this.recorder.inc(this.flushes.get(outcome)!);
	}

	keyringLookup(result: KeyringLookupEvent): void {
		this.recorder.inc(this.keyringResults.get(result)!);
	}
}

/**
 * One isolate's recorded values: the delta not yet taken by a flush, and the running
 * totals (the per-isolate fallback answer).
 */
export class Recorder {
	private pending: Samples = {};
	readonly totals: Samples = {};

	inc(handle: SeriesHandle, by = 1): void {
		add(this.pending, handle, by);
		add(this.totals, handle, by);
	}

	observe(handle: SeriesHandle, value: number): void {
		observe(this.pending, handle, value);
		observe(this.totals, handle, value);
	}

	/** The delta not yet taken, to read without taking it. */
	get unsent(): Readonly<Samples> {
		return this.pending;
	}

	/** Takes the delta since the last call; recording starts a fresh one. */
	takeDelta(): Samples {
		const delta = this.pending;
		this.pending = {};
		return delta;
	}

	hasPending(): boolean {
		for (const _ in this.pending) return true;
		return false;
	}
}

function add(samples: Samples, { definition, key }: SeriesHandle, by: number): void {
	const family = (samples[definition.name] ??= {});
	const current = family[key];
	family[key] = (typeof current === "number" ? current : 0) + by;
}

function observe(samples: Samples, { definition, key }: SeriesHandle, value: number): void {
	const family = (samples[definition.name] ??= {});
	let series = family[key];
	if (typeof series !== "object") {
		series = emptyHistogram(definition);
		family[key] = series;
	}
	series.b[bucketIndex(definition, value)]!++;
	series.s += value;
	series.c++;
}

/** Every given series at zero: what a scrape shows before the first event ("primed"). */
export function zeros(handles: readonly SeriesHandle[]): Samples {
	const samples: Samples = {};
	for (const { definition, key } of handles) {
		(samples[definition.name] ??= {})[key] = definition.type === "histogram" ? emptyHistogram(definition) : 0;
	}
	return samples;
}

/** A histogram series before its first observation: every bucket, the `+Inf` overflow among them, at zero. */
export function emptyHistogram(definition: MetricDefinition): HistogramValue {
	return { b: new Array<number>(definition.buckets.length + 1).fill(0), s: 0, c: 0 };
}

/** Index of the bucket an observation falls in (`buckets.length` for the `+Inf` overflow). */
export function bucketIndex(definition: MetricDefinition, value: number): number {
	const { buckets } = definition;
	let index = 0;
	while (index < buckets.length && value > buckets[index]!) index++;
	return index;
}
