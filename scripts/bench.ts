// npm run bench -- [--duration 5] [--rounds 3] [--connections 16] [--only memory-1k,upstash-1k] [--no-memory-store] [--v2]
// Runs the gateway as it ships in workerd (Miniflare's API, loopback) against the demo
// origin, loads it with autocannon, and prints the table BENCHMARKS.md keeps.
import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ALL_SCENARIOS, formatReport, runBench, type ScenarioName } from "./lib/bench.ts";

const { values } = parseArgs({
	options: {
		duration: { type: "string", default: "5" },
		rounds: { type: "string", default: "3" },
		connections: { type: "string", default: "16" },
		only: { type: "string" },
		"no-memory-store": { type: "boolean", default: false },
		v2: { type: "boolean", default: false },
	},
});
const durationSec = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const scenarios = values.only === undefined ? ALL_SCENARIOS : (values.only.split(",") as ScenarioName[]);
const unknown = scenarios.filter((name) => !ALL_SCENARIOS.includes(name));
if (!(durationSec > 0) || !(connections > 0) || !Number.isInteger(rounds) || rounds < 1 || unknown.length > 0) {
	console.error(`bench: bad arguments${unknown.length ? ` (unknown scenarios: ${unknown.join(", ")}; known: ${ALL_SCENARIOS.join(", ")})` : ""}`);
	process.exit(2);
}

const report = await runBench({ durationSec, rounds, connections, scenarios, memoryStore: !values["no-memory-store"], pinCpus: true, scrapes: 200, log: (line) => console.error(line) });
mkdirSync(".build/bench", { recursive: true });
writeFileSync(".build/bench/results.json", `${JSON.stringify(report, null, 2)}\n`);
const table = formatReport(report);
writeFileSync(".build/bench/report.md", table);
console.log(table);

// Scheme v2 against v1, CPU per request (scripts/bench/v2-scenarios.ts runs alone too).
if (values.v2) {
	const { formatV2Report, runV2Scenarios } = await import("./bench/v2-scenarios.ts");
	console.log(formatV2Report(await runV2Scenarios({ durationSec, rounds, connections, log: (line) => console.error(line) })));
}
