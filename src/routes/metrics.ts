import type { Handler } from "hono";
import type { BearerTokens } from "../auth/token.ts";
import { gatewayError } from "../errors.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics/exposition.ts";
import type { MetricsPipeline } from "../metrics/pipeline.ts";

export interface MetricsRouteOptions {
	pipeline: Pick<MetricsPipeline, "render">;
	tokens: BearerTokens;
	/** In production a token is required: without it every anonymous scrape is a billed Durable Object call. */
	requireToken: boolean;
}

/** `GET /metrics`: Prometheus text, from the aggregate or this isolate's fallback (docs/design.md, "Metrics"). */
export const metricsRoute = (options: MetricsRouteOptions): Handler => {
	return async function metrics(c) {
		if (options.tokens.count === 0 && options.requireToken) {
			throw gatewayError("config_error", { detail: "METRICS_TOKEN is required in production." });
		}
		if (options.tokens.count > 0 && !(await options.tokens.matches(c.req.header("authorization")))) {
			throw gatewayError("unauthorized", { headers: { "WWW-Authenticate": 'Bearer realm="metrics"' } });
		}
		const { body } = await options.pipeline.render();
		return new Response(body, { headers: { "Content-Type": EXPOSITION_CONTENT_TYPE, "Cache-Control": "no-store" } });
	};
};
