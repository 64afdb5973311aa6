import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { signedPath } from "./auth/grammar.ts";
import { hmacAuth } from "./auth/middleware.ts";
import type { GatewayEnv } from "./context.ts";
import { errorResponse } from "./errors.ts";
import type { Gateway } from "./gateway.ts";
import { forwardToOrigin } from "./routes/forward.ts";
import { healthRoute } from "./routes/health.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { testModes } from "./routes/test-modes.ts";

const AGENT_METHODS = new Set(["GET", "POST"]);

/** The routes of SPEC section 1, wired to one gateway's state. */
export function createApp(gateway: Gateway): Hono<GatewayEnv> {
	const { config, deps, events, pipeline, replay } = gateway;
	const app = new Hono<GatewayEnv>();

	app.use(async function scheduleMetricsFlush(c, next) {
		await next();
		const ctx = executionContextOf(c);
		if (ctx !== undefined) pipeline.afterRequest(ctx);
		// Claims made in memory during an Upstash outage are written to it once it answers, after
		// a request that made a claim (so an anonymous /healthz or a refused request never does).
		if (ctx !== undefined && c.get("signed") !== undefined && replay.pendingReconciliation > 0) ctx.waitUntil(replay.reconcile());
	});

	app.get("/healthz", healthRoute({
		replay,
		upstashConfigured: config.replay.upstash !== null,
		tokens: gateway.metricsTokens,
		openDetails: !config.isProduction && config.metrics.tokens.length === 0,
		aggregatorReachable: () => pipeline.reachable(),
	}));
	app.get("/metrics", metricsRoute({ pipeline, tokens: gateway.metricsTokens, requireToken: config.isProduction }));

	const checks: MiddlewareHandler<GatewayEnv>[] = [
		async function agentRoute(c, next) {
			if (!AGENT_METHODS.has(c.req.raw.method)) {
				return errorResponse(405, "method_not_allowed", "Agent routes take GET or POST.", { Allow: "GET, POST" });
			}
			// The one parse of the URL on this path: the signed path and the query come from it.
			const { pathname, search } = new URL(c.req.url);
			// Hono's "/agent/*" also matches "/agent" itself, which is no agent route.
			if (!pathname.startsWith("/agent/") && !pathname.startsWith("/api/agent/")) return c.notFound();
			c.set("path", signedPath(pathname));
			c.set("query", search);
			await next();
		},
		testModes({ allowed: config.testModesAllowed, maxBodyBytes: config.auth.maxBodyBytes, events }),
		hmacAuth({
			keyring: gateway.keyring,
			maxSkewMs: config.auth.maxSkewMs,
			maxBodyBytes: config.auth.maxBodyBytes,
			replay,
			events,
			log: deps.log,
			now: deps.now,
		}),
	];
	const forward = forwardToOrigin({
		originUrl: config.origin.url,
		originToken: config.origin.token,
		timeoutMs: config.origin.timeoutMs,
		idleMs: config.origin.idleMs,
		events,
		log: deps.log,
		fetch: deps.fetchOrigin,
	});
	for (const path of ["/agent/*", "/api/agent/*"]) {
		app.use(path, ...checks);
		app.all(path, forward);
	}

	app.notFound(() => errorResponse(404, "not_found", "No such route."));
	app.onError((error) => {
		if (error instanceof HTTPException) return error.getResponse();
		deps.log.error("unhandled error", { name: error instanceof Error ? error.name : "unknown" });
		return errorResponse(500, "internal_error", "The gateway failed to handle this request.");
	});
	return app;
}

type WaitUntil = Pick<ExecutionContext, "waitUntil">;

function executionContextOf(c: { executionCtx: WaitUntil }): WaitUntil | undefined {
	try {
		return c.executionCtx;
	} catch {
		// No ExecutionContext (app.fetch called without one): nothing to flush in the background.
		return undefined;
	}
}
