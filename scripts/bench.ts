// npm run bench -- [--duration 5] [--rounds 3] [--connections 16] [--only memory-1k,upstash-1k] [--no-memory-store]
// npm run bench -- --only aggregator-scale [--duration 5] [--rounds 3]
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
	},
});
// The aggregator-scale scenario (issue 11) runs on its own: scripts/bench/aggregator-scale.ts.
if (values.only === "aggregator-scale") {
	const { DEFAULT_AGGREGATOR_SCALE, formatAggregatorScale, runAggregatorScale } = await import("./bench/aggregator-scale.ts");
	const report = await runAggregatorScale({ ...DEFAULT_AGGREGATOR_SCALE, durationSec: Number(values.duration), rounds: Number(values.rounds), log: (line) => console.error(line) });
	mkdirSync(".build/bench", { recursive: true });
	writeFileSync(".build/bench/aggregator-scale.json", `${JSON.stringify(report, null, 2)}\n`);
	console.log(formatAggregatorScale(report));
	process.exit(0);
}
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
