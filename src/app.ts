import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { schemeV1 } from "./auth/scheme-v1.ts";
import { schemeV2 } from "./auth/scheme-v2.ts";
import { readBodyWithLimit, signatureAuth } from "./auth/signature-auth.ts";
import type { VerifiedVariables } from "./auth/verified.ts";
import { backgroundOf } from "./background.ts";
import type { Env } from "./env.ts";
import { errorResponse, gatewayError } from "./errors.ts";
import type { AuthEvents } from "./events.ts";
import type { Gateway } from "./gateway.ts";
import { replayProtection } from "./claim/middleware.ts";
import { forwardToOrigin } from "./routes/forward.ts";
import { healthRoute } from "./routes/health.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { usageRoute } from "./routes/usage.ts";

/** The Hono environment of the gateway's routes. */
export type GatewayEnv = { Bindings: Env; Variables: VerifiedVariables };

/**
 * The routes (docs/design.md, "Routes"), wired to one gateway's state. An agent request passes,
 * in the contract's order: the route guard and the test modes (both below: what an agent route
 * answers before any signature), the signature (v1 or v2), the replay claim, then forwarding.
 */
export function createApp(gateway: Gateway): Hono<GatewayEnv> {
	const { config, deps, events, pipeline, replay } = gateway;
	const app = new Hono<GatewayEnv>();

	app.use(async function scheduleMetricsFlush(c, next) {
		await next();
		const ctx = backgroundOf(c);
		if (ctx !== undefined) pipeline.afterRequest(ctx);
	});

	app.get("/healthz", healthRoute({
		replay,
		upstashConfigured: config.replay.upstash !== null,
		limitsConfigured: gateway.limits !== null,
		tokens: gateway.metricsTokens,
		openDetails: !config.isProduction && config.metrics.tokens.length === 0,
		aggregatorReachable: () => pipeline.reachable(),
	}));
	app.get("/metrics", metricsRoute({ pipeline, tokens: gateway.metricsTokens, requireToken: config.isProduction }));
	app.post("/gateway/usage", usageRoute({ tokens: gateway.originTokens, settlements: gateway.settlements }));

	const agent = [
		agentRoute(),
		testModes({ allowed: config.testModesAllowed, maxBodyBytes: config.auth.maxBodyBytes, events }),
		signatureAuth({
			keys: gateway.keyring,
			schemes: config.auth.schemes,
			verifiers: { v1: schemeV1, v2: schemeV2 },
			maxSkewMs: config.auth.maxSkewMs,
			maxBodyBytes: config.auth.maxBodyBytes,
			events,
			log: deps.log,
			now: deps.now,
		}),
		replayProtection({
			guard: replay,
			events,
			log: deps.log,
			now: deps.now,
			...(gateway.limits === null
				? {}
				: { limits: { policies: gateway.limits.policies, release: (slot) => replay.release(slot), events, settlements: gateway.settlements } }),
		}),
		forwardToOrigin({
			originUrl: config.origin.url,
			originToken: config.origin.token,
			timeoutMs: config.origin.timeoutMs,
			streamMaxMs: config.origin.streamMaxMs,
			deadlineOnEveryCall: config.origin.deadlineOnEveryCall,
			idleMs: config.origin.idleMs,
			forwardHeaders: config.origin.forwardHeaders,
			events,
			log: deps.log,
			fetch: deps.fetchOrigin,
			now: deps.now,
		}),
	] as const;
	for (const path of ["/agent/*", "/api/agent/*"]) app.all(path, ...agent);

	app.notFound(() => errorResponse("not_found"));
	app.onError((error) => {
		if (error instanceof HTTPException) return error.getResponse();
		deps.log.error("unhandled error", { name: error instanceof Error ? error.name : "unknown" });
		return errorResponse("internal_error");
	});
	return app;
}

const AGENT_METHODS = new Set(["GET", "POST"]);

/**
 * The route guard of `/agent/...` and its `/api` alias (docs/design.md, "Routes"): GET and POST only
 * (405 with `Allow`), and only paths below `/agent/` (Hono's `/agent/*` also matches
 * `/agent` itself, which is no agent route: 404).
 *
 * @example
 * ```ts
 * app.use("/agent/*", agentRoute());
 * ```
 */
export const agentRoute = (): MiddlewareHandler => {
	return async function agentRoute(c, next) {
		if (!AGENT_METHODS.has(c.req.raw.method)) throw gatewayError("method_not_allowed", { headers: { Allow: "GET, POST" } });
		// The raw path, as the signature sees it (Hono's `c.req.path` is percent-decoded).
		const path = rawPathname(c.req.url);
		if (!path.startsWith("/agent/") && !path.startsWith("/api/agent/")) throw gatewayError("not_found");
		await next();
	};
};

/**
 * The pathname of an absolute, already serialized URL (as `request.url` is), byte for byte
 * as `new URL(url).pathname` gives it, without parsing the whole URL.
 */
export function rawPathname(url: string): string {
	const start = url.indexOf("/", url.indexOf("://") + 3);
	if (start === -1) return "/";
	let end = url.length;
	for (let i = start; i < url.length; i++) {
		const char = url.charCodeAt(i);
		if (char === 63 /* ? */ || char === 35 /* # */) {
			end = i;
			break;
		}
	}
	return url.slice(start, end);
}

export interface TestModesOptions {
	/** True only with `ALLOW_TEST_STUBS=1` or `ENVIRONMENT` development/test; otherwise the header is ignored. */
	allowed: boolean;
	maxBodyBytes: number;
	events: Pick<AuthEvents, "outcome">;
}

const STUB_REPLY = {
	reply: "This is a deterministic test reply.",
	citations: [],
	used_context: { month: null },
	tool_trace: [{ tool: "test_stub", status: "ok" }],
	model: "test-stub",
};

/**
 * `X-Test-Mode: stub | echo` (docs/design.md, "Test modes"): answers without signature check and
 * without calling the origin, where test modes are allowed.
 *
 * @example
 * ```ts
 * app.use("/agent/*", testModes({ allowed: config.testModesAllowed, maxBodyBytes, events }));
 * ```
 */
export const testModes = (options: TestModesOptions): MiddlewareHandler => {
	if (!(options.maxBodyBytes > 0)) throw new Error("testModes: maxBodyBytes must be positive");

	return async function testModes(c, next) {
		const mode = c.req.header("x-test-mode");
		if (!options.allowed || (mode !== "stub" && mode !== "echo")) return next();

		const body = await readBodyWithLimit(c.req.raw, options.maxBodyBytes);
		if (!body.ok) {
			const code = body.reason === "too_large" ? "body_too_large" : "invalid_body";
			options.events.outcome("fail", code);
			throw gatewayError(code);
		}
		options.events.outcome("bypass", mode);
		const reply =
			mode === "stub"
				? STUB_REPLY
				: {
						...STUB_REPLY,
						reply: `[echo] ${lastMessageContent(body.bytes)}`,
						tool_trace: [{ tool: "test_echo", status: "ok" }],
						model: "test-echo",
					};
		return c.json(reply, 200, { "X-Auth-Mode": "bypass" });
	};
};

/** The `content` of the last entry of `messages`, or "" when the body has none. */
function lastMessageContent(bytes: Uint8Array): string {
	try {
		const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
		const messages = (parsed as { messages?: unknown }).messages;
		if (!Array.isArray(messages) || messages.length === 0) return "";
		const content = (messages[messages.length - 1] as { content?: unknown } | null)?.content;
		return typeof content === "string" ? content : "";
	} catch {
		return "";
	}
}
