import { chatBody, signHeaders, signV2Headers, type BenchRequest } from "./requests.ts";
import type { TargetName } from "./targets.ts";

/**
 * One row of the benchmark: a workload against one target. To add a scenario, write it in a
 * module of its own under scripts/bench/ and list it in SCENARIOS below; goals that compare
 * it with a floor go in GOALS (scripts/bench/report.ts).
 */
export interface Scenario {
	name: string;
	target: TargetName;
	/** The n-th request the load generator sends (n counts from 1; every body is unique). */
	request(n: number): BenchRequest;
	/** The status a probe request (one at a time, after the load) must get. */
	probeStatus: number;
	/** The request a probe sends. @default request */
	probe?: (n: number) => BenchRequest;
	/** Probes for the unloaded latency; fewer for slow answers. @default 300 */
	probes?: number;
	/** What the gateway counts these requests as, for the Upstash figure (gateway targets only). */
	counts?: "accepted" | "rejected";
	/**
	 * Requests each round, every one answered to its end, instead of a round of `--duration`: a
	 * long stream the round's end cut off would be paid for in CPU and never counted.
	 */
	requestsPerRound?: number;
}

const KIB = 1024;
/** Small NDJSON events from the demo origin, written one at a time (about a millisecond apart). */
const NDJSON_PATH = "/agent/stream";
const ndjsonQuery = (events: number) => `?tokens=${events}&interval_ms=0`;
/** Whole streams per round: 16 per connection of 200 events, 2 of 2,000 (each some 2 s long). */
const STREAMS_200 = 256;
const STREAMS_2K = 32;

const unsigned = (size: number) => (n: number): BenchRequest => ({ method: "POST", path: "/agent/chat", headers: { "content-type": "application/json" }, body: chatBody(size, n) });
const signed = (size: number) => (n: number): BenchRequest => {
	const body = chatBody(size, n);
	return { method: "POST", path: "/agent/chat", headers: signHeaders("POST", "/agent/chat", body, Date.now()), body };
};
const signedV2 = (size: number, secret?: string) => (n: number): BenchRequest => {
	const body = chatBody(size, n);
	return { method: "POST", path: "/agent/chat", headers: signV2Headers(body, Date.now(), secret), body };
};
const unsignedStream = (events: number) => (): BenchRequest => ({ method: "GET", path: NDJSON_PATH + ndjsonQuery(events), headers: {} });
// A GET has no body to make its signature unique: its timestamp does, one millisecond apart.
let lastTimestamp = 0;
const signedStream = (events: number, query = "") => (): BenchRequest => {
	lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
	return { method: "GET", path: NDJSON_PATH + ndjsonQuery(events) + query, headers: signHeaders("GET", NDJSON_PATH, "", lastTimestamp) };
};

const badSignature = (size: number) => (n: number): BenchRequest => {
	const body = chatBody(size, n);
	return { method: "POST", path: "/agent/chat", headers: signHeaders("POST", "/agent/chat", body, Date.now(), "not-the-secret"), body };
};

export const SCENARIOS: readonly Scenario[] = [
	{ name: "floor-streaming-1k", target: "floor-streaming", request: unsigned(KIB), probeStatus: 200 },
	{ name: "floor-buffering-1k", target: "floor-buffering", request: unsigned(KIB), probeStatus: 200 },
	{ name: "forward-only-1k", target: "forward-only", request: unsigned(KIB), probeStatus: 200 },
	// Not a floor of a goal: what the checks themselves cost at least, written with nothing else (the gap's lower bound).
	{ name: "floor-verifying-1k", target: "floor-verifying", request: signed(KIB), probeStatus: 200 },
	{ name: "memory-1k", target: "gateway-memory", request: signed(KIB), probeStatus: 200, counts: "accepted" },
	{ name: "memory-no-metrics-1k", target: "gateway-no-metrics", request: signed(KIB), probeStatus: 200 },
	{ name: "upstash-1k", target: "gateway-upstash", request: signed(KIB), probeStatus: 200, counts: "accepted" },
	// The limits script, and a token budget in it (issue 30), beside the plain claim: for `--profile` (the limits bench has the exact counts).
	{ name: "upstash-limits-1k", target: "gateway-upstash-limits", request: signed(KIB), probeStatus: 200, counts: "accepted" },
	{ name: "upstash-budget-1k", target: "gateway-upstash-budget", request: signed(KIB), probeStatus: 200, counts: "accepted" },
	{
		// Every request a bad signature over a valid body: the most a rejection costs (the body is
		// read and hashed, the HMAC computed), against the memory gateway.
		name: "bad-signature-flood",
		target: "gateway-memory",
		request: badSignature(KIB),
		probeStatus: 403,
		counts: "rejected",
	},
	{
		// Missing headers, bad signatures and skewed timestamps in turn: none may cost an Upstash call.
		name: "rejected-flood",
		target: "gateway-upstash",
		request: (n) => {
			const body = chatBody(KIB, n);
			const kind = n % 3;
			const headers =
				kind === 0 ? { "content-type": "application/json" }
				: kind === 1 ? signHeaders("POST", "/agent/chat", body, Date.now(), "not-the-secret")
				: signHeaders("POST", "/agent/chat", body, Date.now() - 3_600_000);
			return { method: "POST", path: "/agent/chat", headers, body };
		},
		probeStatus: 403,
		probe: badSignature(KIB),
		counts: "rejected",
	},
	{ name: "floor-streaming-256k", target: "floor-streaming", request: unsigned(256 * KIB), probeStatus: 200 },
	{ name: "floor-buffering-256k", target: "floor-buffering", request: unsigned(256 * KIB), probeStatus: 200 },
	{ name: "forward-only-256k", target: "forward-only", request: unsigned(256 * KIB), probeStatus: 200 },
	{ name: "memory-256k", target: "gateway-memory", request: signed(256 * KIB), probeStatus: 200, counts: "accepted" },
	// Streamed answers: 200 and 2,000 events; the default hands the origin's body to the runtime, the
	// deadline (ORIGIN_STREAM_MAX_MS) pipes it natively, the idle cut (ORIGIN_IDLE_MS) runs JavaScript
	// per chunk. Forward-only and no-metrics split the default's cost. Slow answers: fewer latency probes.
	{ name: "floor-streaming-ndjson", target: "floor-streaming", request: unsignedStream(200), probeStatus: 200, probes: 20, requestsPerRound: STREAMS_200 },
	{ name: "forward-only-ndjson", target: "forward-only", request: unsignedStream(200), probeStatus: 200, probes: 20, requestsPerRound: STREAMS_200 },
	{ name: "floor-verifying-ndjson", target: "floor-verifying", request: signedStream(200), probeStatus: 200, probes: 20, requestsPerRound: STREAMS_200 },
	{ name: "memory-no-metrics-ndjson", target: "gateway-no-metrics", request: signedStream(200), probeStatus: 200, probes: 20, requestsPerRound: STREAMS_200 },
	{ name: "memory-ndjson", target: "gateway-memory", request: signedStream(200), probeStatus: 200, probes: 20, counts: "accepted", requestsPerRound: STREAMS_200 },
	{ name: "memory-ndjson-deadline", target: "gateway-memory-deadline", request: signedStream(200), probeStatus: 200, probes: 20, counts: "accepted", requestsPerRound: STREAMS_200 },
	{ name: "memory-ndjson-idle", target: "gateway-memory-idle", request: signedStream(200), probeStatus: 200, probes: 20, counts: "accepted", requestsPerRound: STREAMS_200 },
	// A budgeted client's stream (issue 30): the origin told not to report (`report=none`; the settle's cost is the limits bench's).
	{ name: "memory-ndjson-budget", target: "gateway-memory-budget", request: signedStream(200, "&report=none"), probeStatus: 200, probes: 20, counts: "accepted", requestsPerRound: STREAMS_200 },
	{ name: "floor-streaming-ndjson-2k", target: "floor-streaming", request: unsignedStream(2000), probeStatus: 200, probes: 5, requestsPerRound: STREAMS_2K },
	{ name: "floor-verifying-ndjson-2k", target: "floor-verifying", request: signedStream(2000), probeStatus: 200, probes: 5, requestsPerRound: STREAMS_2K },
	{ name: "memory-ndjson-2k", target: "gateway-memory", request: signedStream(2000), probeStatus: 200, probes: 5, counts: "accepted", requestsPerRound: STREAMS_2K },
	{ name: "memory-ndjson-deadline-2k", target: "gateway-memory-deadline", request: signedStream(2000), probeStatus: 200, probes: 5, counts: "accepted", requestsPerRound: STREAMS_2K },
	{ name: "memory-ndjson-idle-2k", target: "gateway-memory-idle", request: signedStream(2000), probeStatus: 200, probes: 5, counts: "accepted", requestsPerRound: STREAMS_2K },
	// Scheme v2 beside v1 (memory-1k is v1's accepted row): a forged 256 KiB flood, which v1 must
	// read and hash before it can refuse and v2 refuses from its headers; and what v2's parsing costs.
	{ name: "v1-bad-256k", target: "gateway-memory", request: badSignature(256 * KIB), probeStatus: 403, counts: "rejected" },
	{ name: "v2-bad-256k", target: "gateway-memory", request: signedV2(256 * KIB, "not-the-secret"), probeStatus: 403, counts: "rejected" },
	{ name: "v2-ok-1k", target: "gateway-memory", request: signedV2(KIB), probeStatus: 200, counts: "accepted" },
];

export const SCENARIO_NAMES: readonly string[] = SCENARIOS.map((scenario) => scenario.name);

export function scenarioNamed(name: string): Scenario {
	const found = SCENARIOS.find((scenario) => scenario.name === name);
	if (found === undefined) throw new Error(`no scenario named ${name}`);
	return found;
}
