// An extra row of the benchmark (not a floor): the gateway's own forwarding code, bundled the same way, with no
// authentication, replay protection or metrics in front of it. Never deployed.
import { Hono } from "hono";
import type { GatewayEnv } from "../../../src/app.ts";
import type { Env } from "../../../src/env.ts";
import { consoleLogger } from "../../../src/log.ts";
import { forwardToOrigin } from "../../../src/routes/forward.ts";

export { MetricsAggregator } from "../../../src/metrics/aggregator.ts";

let app: Hono<GatewayEnv> | undefined;

function build(env: Env): Hono<GatewayEnv> {
	const bare = new Hono<GatewayEnv>();
	const forward = forwardToOrigin({
		originUrl: env.ORIGIN_URL ?? "",
		originToken: null,
		timeoutMs: 60_000,
		streamMaxMs: 900_000,
		deadlineOnEveryCall: false,
		idleMs: null,
		forwardHeaders: [],
		events: { response() {}, streamCut() {} },
		log: consoleLogger,
	});
	bare.on(["GET", "POST"], "/agent/*", async function passThrough(c, next) {
		const body = new Uint8Array(await c.req.arrayBuffer());
		const { pathname, search } = new URL(c.req.url);
		c.set("verified", { scheme: "v1", clientId: "", path: pathname, query: search, body, coveredHeaders: [], replay: { id: "", signedAt: "0" } });
		await next();
	}, forward);
	return bare;
}

export default {
	fetch(request, env, ctx) {
		app ??= build(env);
		return app.fetch(request, env, ctx);
	},
} satisfies ExportedHandler<Env>;
