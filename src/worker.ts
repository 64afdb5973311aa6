import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createApp, type GatewayEnv } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import type { Env } from "./env.ts";
import { errorResponse, gatewayError } from "./errors.ts";
import { createGateway, type GatewayDependencies } from "./gateway.ts";

/**
 * The Worker's fetch handler. Settings are read once per isolate: the app and its state
 * are built on the first request for an `env` object and kept for it.
 */
export function createWorker(deps: GatewayDependencies): ExportedHandler<Env> {
	const apps = new WeakMap<object, Hono<GatewayEnv>>();

	function appFor(env: Env): Hono<GatewayEnv> {
		let app = apps.get(env);
		if (app === undefined) {
			app = build(env, deps);
			apps.set(env, app);
		}
		return app;
	}

	return {
		fetch(request, env, ctx) {
			return appFor(env).fetch(request, env, ctx);
		},
	};
}

function build(env: Env, deps: GatewayDependencies): Hono<GatewayEnv> {
	try {
		const config = loadConfig(env);
		const gateway = createGateway(config, env, deps);
		// One rule set (src/config.ts): what production lacks, or what development was allowed.
		for (const warning of config.warnings) deps.log.warn(warning, { environment: config.environment });
		return createApp(gateway);
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		deps.log.error("invalid configuration", { problems: error.problems.join("; ") });
		const detail = `The gateway is misconfigured: ${error.problems.join("; ")}.`;
		const broken = new Hono<GatewayEnv>();
		broken.all("*", () => {
			throw gatewayError("config_error", { detail });
		});
		broken.onError((error) => (error instanceof HTTPException ? error.getResponse() : errorResponse("internal_error")));
		return broken;
	}
}
