import type { Handler } from "hono";
import { readBodyWithLimit } from "../auth/signature-auth.ts";
import type { BearerTokens } from "../auth/token.ts";
import { gatewayError } from "../errors.ts";
import type { Settlements } from "../claim/settle.ts";
import { topLevelKeys } from "../json-keys.ts";

export interface UsageRouteOptions {
	/** `ORIGIN_TOKEN` as bearer tokens; none configured: the route answers 404. */
	tokens: BearerTokens;
	settlements: Pick<Settlements, "report">;
}

/** A report is a small JSON object: anything larger is not one. */
const MAX_REPORT_BYTES = 4_096;

/**
 * `POST /gateway/usage` (docs/design.md, "Token budgets"): the origin reports what a streamed
 * request spent, `{"reservation": "<X-Token-Reservation>", "tokens": N}` with
 * `Authorization: Bearer <ORIGIN_TOKEN>`. 404 without `ORIGIN_TOKEN` set, 401 without the token,
 * 400 for a body that is not a report; then, where the reservation is held (this isolate's
 * memory, else Upstash), 200 settled, 409 settled already (the first report wins), 410 its lease
 * ended (charged whole), 404 unknown or another's, 503 when Upstash cannot tell.
 *
 * @example
 * ```ts
 * app.post("/gateway/usage", usageRoute({ tokens: new BearerTokens([originToken]), settlements }));
 * ```
 */
export const usageRoute = (options: UsageRouteOptions): Handler => {
	return async function usage(c) {
		if (options.tokens.count === 0) throw gatewayError("not_found");
		if (!(await options.tokens.matches(c.req.header("authorization")))) {
			throw gatewayError("unauthorized", { detail: "A valid origin bearer token (ORIGIN_TOKEN) is required.", headers: { "WWW-Authenticate": 'Bearer realm="usage"' } });
		}
		const report = await readReport(c.req.raw);
		if (report === null) throw gatewayError("invalid_usage_report");
		const result = await options.settlements.report(report.reservation, report.tokens);
		switch (result.status) {
			case "settled":
				return c.json({ reservation: report.reservation, status: "settled", hold: result.hold, counted: result.counted });
			case "already_settled":
				throw gatewayError("reservation_settled");
			case "expired":
				throw gatewayError("reservation_expired");
			case "unknown":
				throw gatewayError("reservation_unknown");
			case "unavailable":
				throw gatewayError("budget_unavailable");
		}
	};
};

/** `{"reservation": string, "tokens": whole number}`, each named once, or null. */
async function readReport(request: Request): Promise<{ reservation: string; tokens: number } | null> {
	const body = await readBodyWithLimit(request, MAX_REPORT_BYTES);
	if (!body.ok) return null;
	const text = new TextDecoder().decode(body.bytes);
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		return null;
	}
	if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
	// JSON.parse keeps the last of two equal names without a word: a report that names its
	// reservation or its count twice says two things, and settles nothing.
	const names = topLevelKeys(text);
	const namedOnce = (name: string) => names.indexOf(name) === names.lastIndexOf(name);
	if (!namedOnce("reservation") || !namedOnce("tokens")) return null;
	const { reservation, tokens } = parsed as Record<string, unknown>;
	if (typeof reservation !== "string" || reservation.length === 0 || reservation.length > 256) return null;
	if (typeof tokens !== "number" || !Number.isSafeInteger(tokens) || tokens < 0) return null;
	return { reservation, tokens };
}
