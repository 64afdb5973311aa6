import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { BearerTokens } from "../auth/token.ts";
import type { SettleResult } from "../claim/store.ts";
import { usageRoute } from "./usage.ts";

/** The usage route over a settlements fake that answers `result` and records the reports it got. */
function route(result: SettleResult | { status: "unavailable" }, tokens: string[] = ["origin-token"]) {
	const reports: [string, number][] = [];
	const app = new Hono();
	app.post(
		"/gateway/usage",
		usageRoute({
			tokens: new BearerTokens(tokens),
			settlements: {
				async report(reservation, count) {
					reports.push([reservation, count]);
					return result;
				},
			},
		}),
	);
	const post = (body: string, authorization = "Bearer origin-token") =>
		app.request("https://gateway.test/gateway/usage", { method: "POST", headers: { Authorization: authorization, "Content-Type": "application/json" }, body });
	return { reports, post };
}

const codeOf = async (response: Response) => ((await response.json()) as { code: string }).code;

describe("POST /gateway/usage: what is a report", () => {
	it("takes a reservation id of 256 characters, and refuses one of 257 without asking the store", async () => {
		const { reports, post } = route({ status: "unknown" });
		const longest = "r".repeat(256);
		expect((await post(JSON.stringify({ reservation: longest, tokens: 1 }))).status).toBe(404);
		const refused = await post(JSON.stringify({ reservation: `${longest}r`, tokens: 1 }));
		expect(refused.status).toBe(400);
		expect(await codeOf(refused)).toBe("invalid_usage_report");
		expect(reports).toEqual([[longest, 1]]);
	});

	it("takes a body of 4096 bytes, and refuses one of 4097", async () => {
		const { reports, post } = route({ status: "unknown" });
		const report = (size: number) => {
			const shell = JSON.stringify({ reservation: "r-1", tokens: 7 });
			return shell.slice(0, -1) + " ".repeat(size - shell.length) + "}";
		};
		expect(report(4096)).toHaveLength(4096);
		expect((await post(report(4096))).status).toBe(404);
		expect(await codeOf(await post(report(4097)))).toBe("invalid_usage_report");
		expect(reports).toEqual([["r-1", 7]]);
	});

	it("ignores other fields, and takes a count up to 2^53 - 1 (docs/origin.md)", async () => {
		const { reports, post } = route({ status: "unknown" });
		expect((await post(JSON.stringify({ reservation: "r-2", tokens: 3, model: "m", note: null }))).status).toBe(404);
		expect((await post(`{"reservation": "r-3", "tokens": ${Number.MAX_SAFE_INTEGER}}`)).status).toBe(404);
		expect(await codeOf(await post(`{"reservation": "r-4", "tokens": ${Number.MAX_SAFE_INTEGER + 1}}`))).toBe("invalid_usage_report");
		expect(reports).toEqual([["r-2", 3], ["r-3", Number.MAX_SAFE_INTEGER]]);
	});

	it.each([
		["an empty id", { reservation: "", tokens: 1 }],
		["a negative count", { reservation: "r", tokens: -1 }],
		["a fraction", { reservation: "r", tokens: 1.5 }],
		["a count as a string", { reservation: "r", tokens: "1" }],
		["an array", [{ reservation: "r", tokens: 1 }]],
	])("refuses %s as 400 invalid_usage_report", async (_, body) => {
		const { reports, post } = route({ status: "unknown" });
		const response = await post(JSON.stringify(body));
		expect(response.status).toBe(400);
		expect(reports).toEqual([]);
	});

	it.each([
		["the count twice (JSON.parse would keep the last)", '{"reservation": "r", "tokens": 500, "tokens": 0}'],
		["the reservation twice", '{"reservation": "r", "reservation": "s", "tokens": 1}'],
		["the count twice, once spelled with an escape", '{"reservation": "r", "tokens": 500, "\\u0074okens": 0}'],
	])("refuses a report naming %s as 400 invalid_usage_report, and asks the store nothing", async (_, body) => {
		const { reports, post } = route({ status: "unknown" });
		const response = await post(body);
		expect(response.status).toBe(400);
		expect(await codeOf(response)).toBe("invalid_usage_report");
		expect(reports).toEqual([]);
	});

	it("takes another field written twice: only the report's own two must be said once", async () => {
		const { reports, post } = route({ status: "unknown" });
		expect((await post('{"reservation": "r", "tokens": 2, "model": "a", "model": "b"}')).status).toBe(404);
		expect(reports).toEqual([["r", 2]]);
	});
});

describe("POST /gateway/usage: the answers", () => {
	it("is 404 not_found with no ORIGIN_TOKEN, even to a request that carries a token", async () => {
		const { post } = route({ status: "unknown" }, []);
		const response = await post(JSON.stringify({ reservation: "r", tokens: 1 }));
		expect(response.status).toBe(404);
		expect(await codeOf(response)).toBe("not_found");
	});

	it("is 401 with a Bearer challenge for a wrong token", async () => {
		const { reports, post } = route({ status: "unknown" });
		const response = await post(JSON.stringify({ reservation: "r", tokens: 1 }), "Bearer other");
		expect(response.status).toBe(401);
		expect(response.headers.get("WWW-Authenticate")).toBe('Bearer realm="usage"');
		expect(reports).toEqual([]);
	});

	it("answers a settled report with its hold and what was counted", async () => {
		const { post } = route({ status: "settled", hold: 100, counted: 60 });
		const response = await post(JSON.stringify({ reservation: "r-9", tokens: 60 }));
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ reservation: "r-9", status: "settled", hold: 100, counted: 60 });
	});

	it.each([
		["already_settled", 409, "reservation_settled"],
		["expired", 410, "reservation_expired"],
		["unknown", 404, "reservation_unknown"],
		["unavailable", 503, "budget_unavailable"],
	] as const)("answers %s as %d %s", async (status, code, name) => {
		const { post } = route({ status });
		const response = await post(JSON.stringify({ reservation: "r", tokens: 1 }));
		expect(response.status).toBe(code);
		expect(await codeOf(response)).toBe(name);
	});
});
