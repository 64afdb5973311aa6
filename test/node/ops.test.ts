import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleWorker } from "../../scripts/lib/build.ts";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { startGateway as startBundle } from "../../scripts/lib/gateway-runner.ts";
import { parseExposition } from "./exposition.ts";
import { SECRET, startGateway, type RunningGateway } from "./gateway.ts";
import { available } from "./services.ts";

const execute = promisify(execFile);
const RULES = "ops/prometheus/rules/gateway.rules.yml";
const DASHBOARD = "ops/grafana/agent-gateway.json";

async function run(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
	try {
		const { stdout, stderr } = await execute(command, args, { env: { ...process.env, ...env } });
		return { code: 0, output: stdout + stderr };
	} catch (error) {
		const failed = error as { code: number; stdout: string; stderr: string };
		return { code: failed.code, output: failed.stdout + failed.stderr };
	}
}

/** The `expr:` of every rule in our rules file, one-line or block (`expr: |`). */
function ruleExpressions(text: string): string[] {
	const lines = text.split("\n");
	const expressions: string[] = [];
	for (let i = 0; i < lines.length; i++) {
		const match = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
		if (match === null) continue;
		if (match[2] !== "|") {
			expressions.push(match[2]!);
			continue;
		}
		const block: string[] = [];
		while (i + 1 < lines.length && (lines[i + 1]!.trim() === "" || lines[i + 1]!.search(/\S/) > match[1]!.length)) block.push(lines[++i]!.trim());
		expressions.push(block.join(" ").trim());
	}
	return expressions;
}

function dashboardExpressions(): string[] {
	const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: { targets: { expr: string }[] }[] };
	return dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
}

describe.skipIf(!available("promtool", "prometheus"))("ops/prometheus and ops/grafana", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;
	let exported: Set<string>;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url });
		const families = parseExposition(await (await gateway.fetch("/metrics")).text());
		exported = new Set([...families.values()].flatMap((family) => family.samples.map((sample) => sample.name)));
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	it("promtool check rules and test rules pass (every alert shown firing and quiet)", async () => {
		const check = await run("promtool", ["check", "rules", RULES]);
		expect(check.output).toContain("SUCCESS: 14 rules found");
		expect(check.code).toBe(0);
		const test = await run("promtool", ["test", "rules", "ops/prometheus/tests/gateway.test.yml"]);
		expect(test.output).toContain("SUCCESS");
		expect(test.code).toBe(0);
		const tests = readFileSync("ops/prometheus/tests/gateway.test.yml", "utf8");
		for (const alert of [...readFileSync(RULES, "utf8").matchAll(/- alert: (\w+)/g)].map((m) => m[1]!)) {
			expect(tests.match(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts: \\[\\]`)), `${alert} quiet`).not.toBeNull();
			expect(tests.match(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n`)), `${alert} firing`).not.toBeNull();
		}
	});

	it("the example scrape configuration is valid", async () => {
		const check = await run("promtool", ["check", "config", "--syntax-only", "ops/prometheus/prometheus.yml"]);
		expect(check.code).toBe(0);
	});

	it("every dashboard expression is valid PromQL (checked by promtool as a rule)", async () => {
		const expressions = dashboardExpressions();
		expect(expressions.length).toBeGreaterThanOrEqual(15);
		const directory = mkdtempSync(join(tmpdir(), "dashboard-rules-"));
		try {
			const file = join(directory, "dashboard.rules.yml");
			const rules = expressions.map((expr, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(expr)}`);
			writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
			const check = await run("promtool", ["check", "rules", file]);
			expect(check.output).toContain(`SUCCESS: ${expressions.length} rules found`);
		} finally {
			rmSync(directory, { recursive: true, force: true });
		}
	});

	it("names only series the running gateway exports (or recording rules of ours)", () => {
		const rulesText = readFileSync(RULES, "utf8");
		const recorded = new Set([...rulesText.matchAll(/- record: (\S+)/g)].map((m) => m[1]!));
		const expressions = [...ruleExpressions(rulesText), ...dashboardExpressions()];
		expect(expressions.length).toBeGreaterThan(25);
		const unknown: string[] = [];
		for (const expr of expressions) {
			for (const [name] of expr.matchAll(/\bagent[_:][a-zA-Z0-9_:]+/g)) {
				if (!exported.has(name) && !recorded.has(name)) unknown.push(name);
			}
		}
		expect(unknown).toEqual([]);
		expect(exported.has("agent_auth_skew_milliseconds_bucket")).toBe(true);
	});
});

describe("npm run smoke", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url, METRICS_TOKEN: "smoke-metrics" });
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	const smoke = (url: string, args: string[] = [], env: Record<string, string> = {}) =>
		run(process.execPath, ["scripts/smoke.ts", "--url", url, ...args], { SMOKE_HMAC_SECRET: SECRET, METRICS_TOKEN: "smoke-metrics", ...env });

	it("passes against the local gateway, with a readable report", async () => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed"]);
		expect(output).toContain("PASS  a signed request gives 200");
		expect(output).toContain("PASS  its replay gives 409");
		expect(output).toContain("PASS  a stub request is allowed");
		expect(output).toMatch(/^6 passed, 0 failed$/m);
		expect(code).toBe(0);
	});

	it("fails with the reason when the stub expectation does not hold", async () => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "refused"]);
		expect(output).toContain("FAIL  a stub request is refused: expected the stub header to be ignored (401), got 200: test modes are allowed here");
		expect(code).toBe(1);
	});

	it("fails with the reason against a gateway whose secret differs", async () => {
		const { code, output } = await smoke(gateway.url, ["--expect-stub", "allowed"], { SMOKE_HMAC_SECRET: "another-secret" });
		expect(output).toContain("FAIL  a signed request gives 200: 403 bad_signature: the smoke client's secret differs from the gateway's");
		expect(code).toBe(1);
	});

	it("fails with the reason against a gateway whose replay protection is switched off", async () => {
		// The benchmark's floor: the same forwarding with no authentication and no replay check.
		const unprotected = await startBundle({ ORIGIN_URL: origin.url }, { scriptPath: bundleWorker(".build/test-bare", "scripts/bench/workers/forward-only.ts") });
		try {
			const { code, output } = await smoke(unprotected.url);
			expect(output).toContain("FAIL  missing signature headers give 401: expected 401 missing_headers, got 200");
			expect(output).toContain("FAIL  its replay gives 409: expected 409 replay, got 200");
			expect(code).toBe(1);
		} finally {
			await unprotected.close();
		}
	});

	it("refuses to run without a secret (usage error, exit 2)", async () => {
		const { code, output } = await smoke(gateway.url, [], { SMOKE_HMAC_SECRET: "", HMAC_SECRET: "" });
		expect(output).toContain("set SMOKE_HMAC_SECRET");
		expect(code).toBe(2);
	});
});
