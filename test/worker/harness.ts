import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import { env as bindings } from "cloudflare:workers";
import { parseExposition } from "../fixtures/exposition.ts";
import { signedInit, type SignedInit } from "../fixtures/signed.ts";
import type { Env } from "../../src/env.ts";
import type { LogFields, Logger } from "../../src/log.ts";
import type { LimitRedis } from "../../src/claim/redis-limits.ts";
import type { ReplayRedis } from "../../src/claim/upstash.ts";
import { LimitScriptModel } from "../fixtures/limit-redis-model.ts";
import { createWorker } from "../../src/worker.ts";

export const SECRET = "worker-test-secret-of-32-characters";
export const CLIENT_ID = "svc-test";
export const ORIGIN = "https://origin.test";

export interface LoggedLine {
	level: "info" | "warn" | "error";
	message: string;
	fields: LogFields;
}

/** A fake origin: records what it was sent, answers with `respond` (JSON by default). */
export class FakeOrigin {
	readonly requests: { url: string; method: string; headers: Headers; body: Uint8Array }[] = [];
	respond: (request: Request) => Promise<Response> | Response = () => Response.json({ reply: "origin reply" });

	readonly fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
		const request = new Request(input, init);
		const body = new Uint8Array(await request.clone().arrayBuffer());
		this.requests.push({ url: request.url, method: request.method, headers: request.headers, body });
		return this.respond(request);
	}) as typeof fetch;
}

/**
 * A fake Upstash client with the command the store uses; `answer` decides each reply. The
 * limits script's commands (`evalsha`, `eval`, `zrem`) run a model of the script over the
 * same keys (test/fixtures/limit-redis-model.ts), and are recorded in `scriptCalls`.
 */
export class FakeRedis implements ReplayRedis, LimitRedis {
	readonly calls: { key: string; value: string; opts: unknown }[] = [];
	private readonly keys = new Map<string, string>();
	answer: ((key: string) => Promise<unknown>) | null = null;
	readonly script = new LimitScriptModel(this.keys);
	readonly scriptCalls: string[] = [];
	/** Decides each script command's reply instead of the model (a fault), or null. */
	scriptAnswer: ((command: string) => Promise<unknown>) | null = null;

	async evalsha(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown> {
		this.scriptCalls.push("evalsha");
		return this.scriptAnswer !== null ? this.scriptAnswer("evalsha") : this.script.evalsha(sha1, keys, args);
	}

	async eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
		this.scriptCalls.push("eval");
		return this.scriptAnswer !== null ? this.scriptAnswer("eval") : this.script.eval(script, keys, args);
	}

	async zrem(key: string, member: string): Promise<unknown> {
		this.scriptCalls.push("zrem");
		return this.scriptAnswer !== null ? this.scriptAnswer("zrem") : this.script.zrem(key, member);
	}

	async set(key: string, value: string, opts: { nx: true; px: number }): Promise<unknown> {
		this.calls.push({ key, value, opts });
		if (this.answer !== null) return this.answer(key);
		if (this.keys.has(key)) return null;
		this.keys.set(key, value);
		return "OK";
	}
}

export interface Harness {
	env: Env;
	origin: FakeOrigin;
	redis: FakeRedis;
	logs: LoggedLine[];
	clock: { now: number };
	/** Answers the request; with `wait: false`, its background work is left to `settle()`. */
	fetch(request: Request, options?: { wait?: boolean }): Promise<Response>;
	/** Waits for every request's background work (metric flushes). */
	settle(): Promise<void>;
}

/**
 * A gateway built from `overrides` (production by default), with a fake origin and a
 * fake Upstash client, and a clock the test moves.
 */
export function harness(
	overrides: Partial<Record<keyof Env, string>> = {},
	options: { upstash?: boolean; aggregator?: boolean | Env["METRICS_AGGREGATOR"] } = {},
): Harness {
	const origin = new FakeOrigin();
	const redis = new FakeRedis();
	const logs: LoggedLine[] = [];
	const clock = { now: 1_763_000_000_000 };
	const pending: Promise<void>[] = [];
	const record =
		(level: LoggedLine["level"]) =>
		(message: string, fields: LogFields = {}) =>
			logs.push({ level, message, fields });
	const log: Logger = { info: record("info"), warn: record("warn"), error: record("error") };
	const env = {
		// Without the aggregator, /metrics answers with this harness's own totals.
		METRICS_AGGREGATOR:
			options.aggregator === true
				? (bindings as Env).METRICS_AGGREGATOR
				: options.aggregator === false
					? undefined
					: options.aggregator,
		ENVIRONMENT: "production",
		ORIGIN_URL: ORIGIN,
		HMAC_SECRET: SECRET,
		METRICS_TOKEN: "metrics-token",
		ORIGIN_TOKEN: "origin-token",
		...(options.upstash === false ? {} : { UPSTASH_REDIS_REST_URL: "https://upstash.test", UPSTASH_REDIS_REST_TOKEN: "upstash-token" }),
		...overrides,
	} as Env;
	const worker = createWorker({
		log,
		fetchOrigin: origin.fetch,
		upstash: options.upstash === false ? undefined : redis,
		now: () => clock.now,
	});
	return {
		env,
		origin,
		redis,
		logs,
		clock,
		async fetch(request, { wait = true } = {}) {
			const ctx = createExecutionContext();
			const response = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, env, ctx);
			if (wait) await waitOnExecutionContext(ctx);
			else pending.push(waitOnExecutionContext(ctx));
			return response;
		},
		async settle() {
			while (pending.length > 0) await Promise.all(pending.splice(0));
		},
	};
}

export interface SignedRequestInit extends SignedInit {
	/** The URL path to send to, when it differs from the signed one (the `/api` alias). */
	urlPath?: string;
	query?: string;
}

/** A request signed with the harness's secret, at the harness's clock unless told otherwise. */
export async function signedRequest(init: SignedRequestInit = {}, now = 1_763_000_000_000): Promise<Request> {
	const { path, init: requestInit } = await signedInit(
		{ body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }), ...init },
		{ clientId: CLIENT_ID, secret: SECRET, timestamp: now },
	);
	return new Request(`https://gateway.test${init.urlPath ?? path}${init.query ?? ""}`, requestInit);
}

export async function errorBody(response: Response): Promise<{ detail: string; code: string }> {
	expect(response.headers.get("content-type")).toBe("application/json");
	const body = (await response.json()) as { detail: string; code: string };
	expect(Object.keys(body).sort()).toEqual(["code", "detail"]);
	expect(typeof body.detail).toBe("string");
	return body;
}

/** The sum of the samples of an exposition text whose name matches and whose labels include `labels`. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
	const families = parseExposition(text);
	const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ""));
	const matches = (family?.samples ?? []).filter(
		(sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
	);
	if (matches.length === 0) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
	return matches.reduce((sum, sample) => sum + sample.value, 0);
}

export async function scrape(h: Harness): Promise<string> {
	const response = await h.fetch(new Request("https://gateway.test/metrics", { headers: { Authorization: "Bearer metrics-token" } }));
	expect(response.status).toBe(200);
	return response.text();
}
