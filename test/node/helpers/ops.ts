import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { startDemoOrigin } from "../../../scripts/lib/demo-origin.ts";
import { parseExposition } from "../../fixtures/exposition.ts";
import { startGateway } from "./gateway.ts";

export const RULES = "ops/prometheus/rules/gateway.rules.yml";
export const RULE_TESTS = "ops/prometheus/tests/gateway.test.yml";
export const DASHBOARD = "ops/grafana/agent-gateway.json";

/** Runs a program (promtool) and gives its exit status and its output, whatever the status. */
export function runProgram(command: string, args: string[]): Promise<{ code: number; output: string }> {
	return new Promise((done) => {
		execFile(command, args, (error, stdout, stderr) => {
			const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : -1;
			done({ code, output: stdout + stderr });
		});
	});
}

/** The `expr:` of every rule in our rules file, one-line or block (`expr: |`). */
export function ruleExpressions(text: string = readFileSync(RULES, "utf8")): string[] {
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

/** The names our recording rules define. */
export function recordedSeries(): Set<string> {
	return new Set([...readFileSync(RULES, "utf8").matchAll(/- record: (\S+)/g)].map((m) => m[1]!));
}

export function dashboardExpressions(): string[] {
	const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: { targets: { expr: string }[] }[] };
	return dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
}

/** Every sample name a freshly started gateway exports on /metrics. */
export async function exportedSeries(): Promise<Set<string>> {
	const origin = await startDemoOrigin();
	const gateway = await startGateway({ ORIGIN_URL: origin.url });
	try {
		const families = parseExposition(await (await gateway.fetch("/metrics")).text());
		return new Set([...families.values()].flatMap((family) => family.samples.map((sample) => sample.name)));
	} finally {
		await gateway.close();
		await origin.close();
	}
}

/** The `agent_...` names in `expressions` that are neither exported nor recorded by us. */
export function unknownSeries(expressions: string[], exported: Set<string>, recorded: Set<string>): string[] {
	const unknown: string[] = [];
	for (const expr of expressions) {
		for (const [name] of expr.matchAll(/\bagent[_:][a-zA-Z0-9_:]+/g)) {
			if (!exported.has(name) && !recorded.has(name)) unknown.push(name);
		}
	}
	return unknown;
}
