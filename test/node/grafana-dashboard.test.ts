import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { dashboardExpressions, exportedSeries, recordedSeries, runProgram, unknownSeries } from "./helpers/ops.ts";
import { available } from "./helpers/services.ts";

describe.skipIf(!available("promtool", "prometheus"))("ops/grafana: the dashboard", () => {
	let exported: Set<string>;
	beforeAll(async () => {
		exported = await exportedSeries();
	});

	it("every dashboard expression is valid PromQL (checked by promtool as a rule)", async () => {
		const expressions = dashboardExpressions();
		expect(expressions.length).toBeGreaterThanOrEqual(15);
		const directory = mkdtempSync(join(tmpdir(), "dashboard-rules-"));
		try {
			const file = join(directory, "dashboard.rules.yml");
			const rules = expressions.map((expr, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(expr)}`);
			writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
			const check = await runProgram("promtool", ["check", "rules", file]);
			expect(check.output).toContain(`SUCCESS: ${expressions.length} rules found`);
		} finally {
			rmSync(directory, { recursive: true, force: true });
		}
	});

	it("names only series the running gateway exports (or recording rules of ours)", () => {
		const expressions = dashboardExpressions();
		expect(unknownSeries(expressions, exported, recordedSeries())).toEqual([]);
	});
});
