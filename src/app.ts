import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { signatureAuth } from "./auth/signature-auth.ts";
import type { VerifiedVariables } from "./auth/verified.ts";
import { backgroundOf } from "./background.ts";
import type { Env } from "./env.ts";
import { errorResponse } from "./errors.ts";
import type { Gateway } from "./gateway.ts";
import { replayProtection } from "./replay/middleware.ts";
import { agentRoute } from "./routes/agent-route.ts";
import { forwardToOrigin } from "./routes/forward.ts";
import { healthRoute } from "./routes/health.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { testModes } from "./routes/test-modes.ts";

/** The Hono environment of the gateway's routes. */
export type GatewayEnv = { Bindings: Env; Variables: VerifiedVariables };

/**
 * The routes (docs/design.md, "Routes"), wired to one gateway's state. An agent request passes,
 * in the contract's order: the route guard, test modes, the signature (v1 or v2), the replay claim,
 * then forwarding.
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

	const agent = [
		agentRoute(),
		testModes({ allowed: config.testModesAllowed, maxBodyBytes: config.auth.maxBodyBytes, events }),
		signatureAuth({
			keys: gateway.keyring,
			schemes: config.auth.schemes,
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
			...(gateway.limits === null ? {} : { limits: { policies: gateway.limits.policies, release: gateway.limits.release, events } }),
		}),
		forwardToOrigin({
			originUrl: config.origin.url,
			originToken: config.origin.token,
			timeoutMs: config.origin.timeoutMs,
			streamMaxMs: config.origin.streamMaxMs,
			idleMs: config.origin.idleMs,
			events,
			log: deps.log,
			fetch: deps.fetchOrigin,
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
