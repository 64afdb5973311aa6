// npm run bench -- --help
// Runs the gateway as it ships in workerd (Miniflare's API, loopback) beside two floors that
// share none of its code, loads them with autocannon, and prints the table BENCHMARKS.md keeps.
import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatReport } from "./bench/report.ts";
import { assertLoadableTogether, runBench } from "./bench/run.ts";
import { SCENARIO_NAMES, scenarioNamed } from "./bench/scenarios.ts";

/** Scenarios with a harness of their own (not a gateway under load against its floors). */
const OWN_HARNESS = ["aggregator-scale", "replay-memory", "keyring", "limits"];

const USAGE = `usage: npm run bench -- [options]
  --duration SEC      seconds of load per scenario and round (default 5)
  --rounds N          rounds over all scenarios; figures are medians of the rounds (default 3)
  --connections N     concurrent connections of the load generator (default 16)
  --only A,B          run only these scenarios (default: all)
  --together          load a round's scenarios all at once, each on its own Worker (at most one
                      on Upstash; limits: each row with its own Upstash server): paired rows
                      share every moment of the machine
  --profile [A,B]     after the rounds, profile these scenarios through workerd's inspector
                      (default memory-1k,memory-ndjson) and print the top functions by self time
  --no-memory-store   skip the memory store's million-key figure
  --no-extras         skip the figures measured beside memory-1k (scrapes, ingest capacity, a neighbour's latency)
  --help              print this and exit
scenarios: ${[...SCENARIO_NAMES, ...OWN_HARNESS].join(", ")}
  (aggregator-scale: one MetricsAggregator fed by 100 to 50,000 isolates; --duration and --rounds apply;
   replay-memory: the replay guard's structures full at the default bounds, heap measured inside workerd;
   keyring: the keyring in KV, 1 and 10,000 clients, against HMAC_CLIENTS, CPU per accepted request, --rounds applies;
   limits: CLIENT_LIMITS against none, CPU and Upstash commands per accepted request)`;

function usageError(message: string): never {
	console.error(`bench: ${message}`);
	console.error(USAGE);
	return process.exit(2) as never;
}

// `--profile` with no list takes the default; parseArgs needs a string option to carry one.
const argv = process.argv.slice(2);
const profileAt = argv.indexOf("--profile");
if (profileAt !== -1 && (argv[profileAt + 1] === undefined || argv[profileAt + 1]!.startsWith("--"))) argv.splice(profileAt + 1, 0, "memory-1k,memory-ndjson");

let values;
try {
	({ values } = parseArgs({
		args: argv,
		strict: true,
		allowPositionals: false,
		options: {
			duration: { type: "string", default: "5" },
			rounds: { type: "string", default: "3" },
			connections: { type: "string", default: "16" },
			only: { type: "string" },
			together: { type: "boolean", default: false },
			profile: { type: "string" },
			"no-memory-store": { type: "boolean", default: false },
			"no-extras": { type: "boolean", default: false },
			help: { type: "boolean", default: false },
		},
	}));
} catch (error) {
	usageError(error instanceof Error ? error.message : String(error));
}
if (values.help) {
	console.log(USAGE);
	process.exit(0);
}
const durationSec = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const scenarios = values.only === undefined ? [...SCENARIO_NAMES, ...OWN_HARNESS] : values.only.split(",");
const profile = values.profile === undefined ? [] : values.profile.split(",");
const unknown = [
	...scenarios.filter((name) => !SCENARIO_NAMES.includes(name) && !OWN_HARNESS.includes(name)),
	...profile.filter((name) => !SCENARIO_NAMES.includes(name)),
];
if (unknown.length > 0) usageError(`unknown scenarios: ${unknown.join(", ")}`);
if (!(durationSec > 0)) usageError("--duration must be a positive number of seconds");
if (!Number.isInteger(rounds) || rounds < 1) usageError("--rounds must be a positive integer");
if (!Number.isInteger(connections) || connections < 1) usageError("--connections must be a positive integer");

const gatewayScenarios = scenarios.filter((name) => SCENARIO_NAMES.includes(name));
if (values.together) {
	try {
		assertLoadableTogether(gatewayScenarios.map(scenarioNamed));
	} catch (error) {
		usageError(error instanceof Error ? error.message : String(error));
	}
}
mkdirSync(".build/bench", { recursive: true });
if (gatewayScenarios.length > 0) {
	const report = await runBench({
		durationSec,
		rounds,
		together: values.together,
		connections,
		scenarios: gatewayScenarios,
		memoryStore: !values["no-memory-store"],
		pinCpus: true,
		scrapes: values["no-extras"] ? 0 : 200,
		profile,
		log: (line) => console.error(line),
	});
	writeFileSync(".build/bench/results.json", `${JSON.stringify(report, null, 2)}\n`);
	const table = formatReport(report);
	writeFileSync(".build/bench/report.md", table);
	console.log(table);
}

if (scenarios.includes("aggregator-scale")) {
	const { DEFAULT_AGGREGATOR_SCALE, formatAggregatorScale, runAggregatorScale } = await import("./bench/aggregator-scale.ts");
	const report = await runAggregatorScale({ ...DEFAULT_AGGREGATOR_SCALE, durationSec, rounds, log: (line) => console.error(line) });
	writeFileSync(".build/bench/aggregator-scale.json", `${JSON.stringify(report, null, 2)}\n`);
	console.log(formatAggregatorScale(report));
}

if (scenarios.includes("limits")) {
	const { formatLimitsReport, runLimitsBench } = await import("./bench/limits.ts");
	console.log(formatLimitsReport(await runLimitsBench({ durationSec, rounds, connections, together: values.together, log: (line) => console.error(line) }), values.together));
}

if (scenarios.includes("replay-memory")) {
	const { formatReplayMemory, runReplayMemory } = await import("./bench/replay-memory.ts");
	const report = await runReplayMemory({ log: (line) => console.error(line) });
	writeFileSync(".build/bench/replay-memory.json", `${JSON.stringify(report, null, 2)}\n`);
	console.log(formatReplayMemory(report));
}

if (scenarios.includes("keyring")) {
	const { formatKeyringReport, runKeyringScenarios } = await import("./bench/keyring.ts");
	console.log(formatKeyringReport(await runKeyringScenarios({ requests: 3000, rounds, log: (line) => console.error(line) })));
}
