// A Worker that fills the replay guard's structures to their bounds inside workerd, for
// scripts/bench/replay-memory.ts to read the heap through the inspector: `POST /fill` claims
// `keys` requests in memory while Upstash fails (each one waits for its write-back), then as
// many more as the decisions hold, which Upstash takes; every key a maximum-length v2 key
// (`scheme=v2`, whose keyid is the client id), or a v1 key (a 64-character signature) beside
// a 64-character client id the key does not name (`scheme=v1`).
import { CircuitBreaker } from "../../../src/claim/breaker.ts";
import { ReplayGuard } from "../../../src/claim/guard.ts";
import { MemoryReplayStore } from "../../../src/claim/memory.ts";
import { ReplayStoreError, type ReplayStore } from "../../../src/claim/store.ts";

/** Kept here so the heap holds it after the request. */
let guard: ReplayGuard | null = null;
let upstashUp = false;

const upstash: ReplayStore = {
	name: "upstash",
	async claim() {
		if (!upstashUp) throw new ReplayStoreError("error", "down");
		return "claimed";
	},
	async claimOrRead() {
		throw new ReplayStoreError("error", "down");
	},
};

const silent = { info() {}, warn() {}, error() {} };
const events = { storeCall() {}, fallback() {}, breakerOpened() {}, replayAttempt() {}, outageReplay() {} };

/** 64 characters, distinct for each `n`, from the characters a v2 keyid or nonce may hold. */
function field(kind: string, n: number): string {
	return `${kind}-${n.toString(36)}-`.padEnd(64, "x");
}

/** 64 lowercase hex characters, distinct for each `n`, as a v1 signature. */
function signature(n: number): string {
	return n.toString(16).padStart(64, "0");
}

export default {
	async fetch(request: Request): Promise<Response> {
		const url = new URL(request.url);
		if (request.method !== "POST" || url.pathname !== "/fill") return new Response("POST /fill?keys=N&clients=M", { status: 404 });
		const keys = Number(url.searchParams.get("keys") ?? 100_000);
		// Either phase can be left out, to see what each structure costs.
		const outage = url.searchParams.get("outage") !== "0";
		const decisions = url.searchParams.get("decisions") !== "0";
		// How many distinct clients make the claims: each client id is kept once per client.
		const clients = Number(url.searchParams.get("clients") ?? keys);
		const scheme = url.searchParams.get("scheme") === "v1" ? "v1" : "v2";
		const now = Date.now();
		upstashUp = false;
		guard = new ReplayGuard({
			primary: upstash,
			memoryOnlyIsNormal: false,
			memory: new MemoryReplayStore(keys),
			// Never opens: every claim asks the fake Upstash, which fails, then answers.
			breaker: new CircuitBreaker({ failureThreshold: Number.MAX_SAFE_INTEGER, cooldownMs: 1 }),
			failMode: "memory",
			prefix: "hmac:replay:",
			ttlSeconds: 300,
			maxSkewMs: 300_000,
			events,
			log: silent,
		});
		const claim = async (n: number) => {
			const clientId = field("client", n % clients);
			const replayId = scheme === "v1" ? signature(n) : `v2:${clientId}:${field("nonce", n)}`;
			return guard!.claim(replayId, clientId, String(now));
		};
		let memoryClaims = 0;
		if (outage) for (let n = 0; n < keys; n++) if ((await claim(n)).status === "claimed") memoryClaims++;
		upstashUp = true;
		let upstashClaims = 0;
		// As many as its bound holds (half the memory store's by default); more would only evict.
		if (decisions) for (let n = keys; n < keys + Math.ceil(keys / 2); n++) if ((await claim(n)).status === "claimed") upstashClaims++;
		return Response.json({ scheme, keys, clients, memoryClaims, upstashClaims, pendingWriteBacks: guard.pendingReconciliation });
	},
};
