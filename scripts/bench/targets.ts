import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { basename } from "node:path";
import { bundleWorker } from "../lib/build.ts";

/** A Worker the benchmark runs in a workerd of its own; scenarios load one of them. */
export type TargetName =
	| "floor-streaming"
	| "floor-buffering"
	| "floor-verifying"
	| "forward-only"
	| "gateway-memory"
	| "gateway-memory-deadline"
	| "gateway-memory-idle"
	| "gateway-memory-budget"
	| "gateway-no-metrics"
	| "gateway-upstash"
	| "gateway-upstash-limits"
	| "gateway-upstash-budget";

export interface Target {
	/** One line for the report. */
	about: string;
	/**
	 * The entry: a floor (a few lines, no imports) runs with its types stripped; anything else is
	 * bundled by wrangler as it deploys. Null: the shipped entry (wrangler.toml's `main`).
	 */
	entry: string | null;
	floor: boolean;
	/** Runs the gateway's metrics pipeline (its Durable Object, its /metrics counters). */
	gateway: boolean;
	/** Needs redis-server and the local Upstash server. */
	upstash: boolean;
	/** Settings of its own, beside the ones every target gets. */
	bindings?: Record<string, string>;
}

export const TARGETS: Record<TargetName, Target> = {
	"floor-streaming": {
		about: "floor: `fetch(origin, {method, headers, body: request.body})`, the answer returned as it is (scripts/bench/workers/floor-streaming.ts)",
		entry: "scripts/bench/workers/floor-streaming.ts",
		floor: true,
		gateway: false,
		upstash: false,
	},
	"floor-buffering": {
		about: "floor: `await request.arrayBuffer()`, then the same fetch (scripts/bench/workers/floor-buffering.ts)",
		entry: "scripts/bench/workers/floor-buffering.ts",
		floor: true,
		gateway: false,
		upstash: false,
	},
	"floor-verifying": {
		about: "floor: the least a v1 verifier must do with WebCrypto (the body's SHA-256, the HMAC checked, the clock window, a replay Map), then the buffering floor's fetch (scripts/bench/workers/floor-verifying.ts)",
		entry: "scripts/bench/workers/floor-verifying.ts",
		floor: true,
		gateway: false,
		upstash: false,
	},
	"forward-only": {
		about: "the gateway's own forwarding (Hono, buffered body, forwardToOrigin) without authentication, replay check or metrics",
		entry: "scripts/bench/workers/forward-only.ts",
		floor: false,
		gateway: false,
		upstash: false,
	},
	"gateway-memory": {
		about: "the gateway as it ships (wrangler's bundle), memory replay store: a streamed answer is the origin's body handed to the runtime",
		entry: null,
		floor: false,
		gateway: true,
		upstash: false,
	},
	"gateway-memory-deadline": {
		about: "the gateway as it ships, memory replay store, with `ORIGIN_STREAM_MAX_MS=900000`: a streamed answer is piped natively under the total deadline",
		entry: null,
		floor: false,
		gateway: true,
		upstash: false,
		bindings: { ORIGIN_STREAM_MAX_MS: "900000" },
	},
	"gateway-memory-idle": {
		about: "the gateway as it ships, memory replay store, with `ORIGIN_IDLE_MS=30000`: a streamed answer passes through JavaScript per chunk (the idle cut)",
		entry: null,
		floor: false,
		gateway: true,
		upstash: false,
		bindings: { ORIGIN_IDLE_MS: "30000" },
	},
	"gateway-memory-budget": {
		about: "the gateway as it ships, memory replay store, every client under a token budget never spent (`CLIENT_LIMITS` `*`: `daily_tokens`, `token_hold`): the reservation rides on the claim, the streamed answer stays the runtime's",
		entry: null,
		floor: false,
		gateway: true,
		upstash: false,
		bindings: { CLIENT_LIMITS: JSON.stringify({ "*": { daily_tokens: 1_000_000_000, token_hold: 4096 } }) },
	},
	"gateway-no-metrics": {
		about: "the gateway with metric recording switched off (scripts/bench/workers/no-metrics.ts), memory replay store",
		entry: "scripts/bench/workers/no-metrics.ts",
		floor: false,
		gateway: true,
		upstash: false,
	},
	"gateway-upstash": {
		about: "the gateway as it ships, with the local Upstash server and redis-server",
		entry: null,
		floor: false,
		gateway: true,
		upstash: true,
	},
	"gateway-upstash-limits": {
		about: "the gateway as it ships on Upstash, every client under an `rpd` never reached (one client sends all, past production's `rpm` bound): the claim is the limits script",
		entry: null,
		floor: false,
		gateway: true,
		upstash: true,
		bindings: { CLIENT_LIMITS: JSON.stringify({ "*": { rpd: 1_000_000_000 } }) },
	},
	"gateway-upstash-budget": {
		about: "the same with a token budget never spent (`daily_tokens`, `monthly_tokens`, `token_hold`): the reservation in the same script; the demo origin reports each answer's tokens by header, whose settle rides on a later claim",
		entry: null,
		floor: false,
		gateway: true,
		upstash: true,
		bindings: { CLIENT_LIMITS: JSON.stringify({ "*": { rpd: 1_000_000_000, daily_tokens: 1_000_000_000, monthly_tokens: 1_000_000_000, token_hold: 4096 } }) },
	},
};

/** Builds each entry once (the memory and Upstash gateways share the shipped bundle). */
export function buildTargets(names: Iterable<TargetName>): Map<TargetName, string> {
	const built = new Map<string | null, string>();
	const paths = new Map<TargetName, string>();
	for (const name of names) {
		const { entry, floor } = TARGETS[name];
		if (!built.has(entry)) built.set(entry, entry === null ? bundleWorker(".build/bench/gateway") : floor ? stripped(entry) : bundleWorker(`.build/bench/${basename(entry, ".ts")}`, entry));
		paths.set(name, built.get(entry)!);
	}
	return paths;
}

/** A floor is a few lines with no imports: its types stripped is the whole bundle, no bundler in between. */
function stripped(entry: string): string {
	const out = `.build/bench/${basename(entry, ".ts")}.js`;
	mkdirSync(".build/bench", { recursive: true });
	writeFileSync(out, stripTypeScriptTypes(readFileSync(entry, "utf8")));
	return out;
}
