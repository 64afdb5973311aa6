import type { MiddlewareHandler } from "hono";
import { rawPathname } from "../auth/grammar.ts";
import { gatewayError } from "../errors.ts";

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
