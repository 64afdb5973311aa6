// What an Upstash outage can cost an isolate's memory: the replay guard's memory store, its
// decisions and its waiting write-backs, each full at the default bound, measured inside
// workerd (V8's own heap figures through the inspector, after a full garbage collection).
import { buildSync } from "esbuild";
import { startGateway } from "../lib/gateway-runner.ts";
import { connect, type Session } from "./profile.ts";

/** The budget the three structures must fit in together (docs/reliability.md). */
export const REPLAY_MEMORY_BUDGET_BYTES = 32 * 1024 * 1024;
/** `REPLAY_MEMORY_MAX_KEYS`' default. */
export const DEFAULT_REPLAY_MEMORY_KEYS = 100_000;

export interface ReplayMemoryCase {
	/** v2: each key `v2:<64-character keyid>:<64-character nonce>`, naming its client; v1: a 64-character signature, its client id kept beside it. */
	scheme: "v1" | "v2";
	keys: number;
	/** Distinct client ids among the claims (each 64 characters). */
	clients: number;
	memoryClaims: number;
	upstashClaims: number;
	pendingWriteBacks: number;
	/** Heap used after the fill minus before it, both after a full collection. */
	heapBytes: number;
	/** `heapBytes` over the claims held in memory (each also a write-back) plus the decisions. */
	bytesPerEntry: number;
	withinBudget: boolean;
}

export interface ReplayMemoryReport {
	budgetBytes: number;
	cases: ReplayMemoryCase[];
}

/**
 * For each case, a fresh workerd: fills the structures (scripts/bench/workers/replay-memory.ts)
 * and reads the heap before and after. The worst case is a distinct client per claim (a
 * shared secret lets a client name itself), with v2 keys or with v1 keys (whose client id is
 * kept beside the key); the usual one, a few hundred clients.
 */
export async function runReplayMemory(options: { keys?: number; log: (line: string) => void }): Promise<ReplayMemoryReport> {
	const keys = options.keys ?? DEFAULT_REPLAY_MEMORY_KEYS;
	options.log("building the replay-memory worker ...");
	// esbuild alone: wrangler would bundle it with the gateway's Durable Object binding.
	const scriptPath = ".build/bench/replay-memory/index.js";
	buildSync({ entryPoints: ["scripts/bench/workers/replay-memory.ts"], bundle: true, format: "esm", target: "es2022", outfile: scriptPath, logLevel: "error" });
	const cases: ReplayMemoryCase[] = [];
	const runs: { scheme: "v1" | "v2"; clients: number }[] = [
		{ scheme: "v2", clients: keys },
		{ scheme: "v1", clients: keys },
		{ scheme: "v2", clients: 500 },
	];
	for (const { scheme, clients } of runs) {
		options.log(`replay-memory: ${keys} memory claims and the decisions, full, ${scheme} keys, ${clients} clients, inside workerd ...`);
		const gateway = await startGateway({}, { scriptPath, metricsAggregator: false, inspectorPort: 0 });
		try {
			const session = await inspectorSession(gateway.mf);
			try {
				const before = await heapUsed(session);
				const response = await gateway.fetch(`/fill?keys=${keys}&clients=${clients}&scheme=${scheme}`, { method: "POST" });
				if (!response.ok) throw new Error(`replay-memory: /fill answered ${response.status}`);
				const filled = (await response.json()) as Omit<ReplayMemoryCase, "heapBytes" | "bytesPerEntry" | "withinBudget">;
				const heapBytes = (await heapUsed(session)) - before;
				cases.push({
					...filled,
					heapBytes,
					bytesPerEntry: Math.round(heapBytes / Math.max(1, filled.memoryClaims + filled.upstashClaims)),
					withinBudget: heapBytes <= REPLAY_MEMORY_BUDGET_BYTES,
				});
			} finally {
				session.close();
			}
		} finally {
			await gateway.close();
		}
	}
	return { budgetBytes: REPLAY_MEMORY_BUDGET_BYTES, cases };
}

export function formatReplayMemory(report: ReplayMemoryReport): string {
	const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
	const lines = [
		`Replay memory inside workerd (budget ${mib(report.budgetBytes)} MiB): the memory store, the decisions and the waiting write-backs, full`,
		"| scheme | claims in memory (each waiting for its write-back) | decisions | clients | heap | per entry | within budget |",
		"|---|---|---|---|---|---|---|",
		...report.cases.map(
			(c) => `| ${c.scheme} | ${c.memoryClaims} (${c.pendingWriteBacks}) | ${c.upstashClaims} | ${c.clients} | ${mib(c.heapBytes)} MiB | ${c.bytesPerEntry} B | ${c.withinBudget ? "yes" : "NO"} |`,
		),
	];
	return `${lines.join("\n")}\n`;
}

async function inspectorSession(mf: { getInspectorURL(): Promise<URL> }): Promise<Session> {
	const inspector = await mf.getInspectorURL();
	const listed = (await (await fetch(`http://${inspector.host}/json/list`)).json()) as { id: string; title?: string; webSocketDebuggerUrl?: string }[];
	const target = listed.find((entry) => `${entry.id} ${entry.title ?? ""}`.includes("gateway-0")) ?? listed[0];
	if (target === undefined) throw new Error("replay-memory: workerd's inspector lists no Worker");
	return connect(target.webSocketDebuggerUrl ?? `ws://${inspector.host}/${target.id}`);
}

/**
 * The isolate's used heap after a full collection. workerd's inspector does not answer
 * `HeapProfiler.collectGarbage`; a heap snapshot collects all garbage first (its chunks,
 * sent as events, are not read).
 */
async function heapUsed(session: Session): Promise<number> {
	await session.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
	const { usedSize } = (await session.send("Runtime.getHeapUsage")) as { usedSize: number };
	return usedSize;
}
