import type { Handler } from "hono";
import type { BearerTokens } from "../auth/token.ts";
import type { ReplayGuard } from "../claim/guard.ts";

export interface HealthRouteOptions {
	replay: Pick<ReplayGuard, "storeName" | "degraded" | "breakerState">;
	upstashConfigured: boolean;
	/** `CLIENT_LIMITS` is set: details say whether the limits are shared or per isolate. @default false */
	limitsConfigured?: boolean;
	tokens: BearerTokens;
	/** Whether details are shown without a token (only outside production, when no token is set). */
	openDetails: boolean;
	/** Pings the metrics aggregator; only called for a detailed answer. */
	aggregatorReachable: () => Promise<boolean>;
}

/**
 * `GET /healthz`: `{"status"}` for anyone, from this isolate's state alone (no subrequest);
 * with the metrics token, details: replay store, degraded or not, aggregator reachable.
 */
export const healthRoute = (options: HealthRouteOptions): Handler => {
	return async function health(c) {
		const degraded = options.replay.degraded;
		const status = degraded ? "degraded" : "ok";
		const authorized = options.openDetails || (await options.tokens.matches(c.req.header("authorization")));
		if (!authorized) return c.json({ status }, 200, { "Cache-Control": "no-store" });
		return c.json(
			{
				status,
				replay: {
					store: options.replay.storeName,
					upstash_configured: options.upstashConfigured,
					degraded,
					breaker: options.replay.breakerState,
				},
				// Limits are shared only while claims reach Upstash: otherwise each isolate enforces them alone.
				...(options.limitsConfigured === true
					? { limits: { enforced: options.upstashConfigured && !degraded ? "shared" : "isolate" } }
					: {}),
				aggregator: { reachable: await options.aggregatorReachable() },
			},
			200,
			{ "Cache-Control": "no-store" },
		);
	};
};
