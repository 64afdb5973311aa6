import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { exportedSeries, recordedSeries, ruleExpressions, RULES, RULE_TESTS, runProgram, unknownSeries } from "./helpers/ops.ts";
import { available } from "./helpers/services.ts";

describe.skipIf(!available("promtool", "prometheus"))("ops/prometheus: rules, their tests and the scrape configuration", () => {
	let exported: Set<string>;
	beforeAll(async () => {
		exported = await exportedSeries();
	});

	it("promtool check rules and test rules pass (every alert shown firing and quiet)", async () => {
		const check = await runProgram("promtool", ["check", "rules", RULES]);
		expect(check.output).toContain("SUCCESS: 21 rules found");
		expect(check.code).toBe(0);
		const test = await runProgram("promtool", ["test", "rules", RULE_TESTS]);
		expect(test.output).toContain("SUCCESS");
		expect(test.code).toBe(0);
		const tests = readFileSync(RULE_TESTS, "utf8");
		for (const alert of [...readFileSync(RULES, "utf8").matchAll(/- alert: (\w+)/g)].map((m) => m[1]!)) {
			expect(tests.match(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts: \\[\\]`)), `${alert} quiet`).not.toBeNull();
			expect(tests.match(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n`)), `${alert} firing`).not.toBeNull();
		}
	});

	it("the example scrape configuration is valid", async () => {
		const check = await runProgram("promtool", ["check", "config", "--syntax-only", "ops/prometheus/prometheus.yml"]);
		expect(check.code).toBe(0);
	});

	it("the rules name only series the running gateway exports (or recording rules of ours)", () => {
		const expressions = ruleExpressions();
		expect(expressions.length).toBeGreaterThan(10);
		expect(unknownSeries(expressions, exported, recordedSeries())).toEqual([]);
		expect(exported.has("agent_auth_skew_milliseconds_bucket")).toBe(true);
	});
});
