import { describe, expect, it } from "vitest";
import { formatLimitsReport, runLimitsBench } from "../../scripts/bench/limits.ts";
import { available } from "./helpers/services.ts";

// Not a benchmark: one short run, so the harness cannot rot. No timing is asserted; the
// command counts are exact (the Upstash server counts, the gateway counts what it accepted).
describe.skipIf(!available("redis-server", "redis-server"))("npm run bench -- --only limits (a short smoke run)", () => {
	it.each([false, true])("one Upstash command per accepted request with rpm and rpd, as without limits; two with concurrent (the release); rows loaded together: %s", async (together) => {
		const log: string[] = [];
		// Two clients: each one's next request comes well within a settle's one-second wait for a claim to
		// ride on, however slow the machine (twenty, loaded together on a slow machine, did not).
		const clients = 2;
		const results = await runLimitsBench({ durationSec: 1, rounds: 1, connections: 2, together, clients, inProcessRequests: 50, log: (line) => log.push(line) });
		expect(log.filter((line) => line.startsWith("round ")).length).toBe(together ? 1 : 5);
		expect(results.map((result) => result.name)).toEqual(["no-limits", "rpm+rpd", "rpm+rpd+concurrent", "rpm+rpd+budget", "rpm+rpd+budget-unreported"]);
		const [none, rates, all, budget, unreported] = results;
		// A budget: its reservation in the same script on the way in, exactly one command when the
		// origin reports nothing; the settles of the answers it reports (by header) ride on the
		// client's next claims, so only the last few of a round, with no claim after them, are
		// a command of their own (in the background: a late one may miss the count).
		expect(Object.keys(budget!.commands).sort()).toEqual(["evalsha"]);
		expect(Object.keys(unreported!.commands).sort()).toEqual(["evalsha"]);
		expect(unreported!.upstashCommandsPerRequest).toBe(1);
		expect(budget!.upstashCommandsPerRequest).toBeGreaterThanOrEqual(1);
		// Alone: at most each client's last settle of the round, and of the warm-up before it (a short run has few requests, so a bound per request would not hold).
		const commands = Object.values(budget!.commands).reduce((sum, count) => sum + count, 0);
		const accepted = Math.round(commands / budget!.upstashCommandsPerRequest);
		expect(commands - accepted).toBeLessThanOrEqual(2 * clients);
		// Enough requests that settles all sent alone (one per request) would pass that bound.
		expect(accepted).toBeGreaterThan(2 * clients + 10);
		expect(Object.keys(none!.commands)).toEqual(["set"]);
		expect(Object.keys(rates!.commands).sort()).toEqual(["evalsha"]);
		expect(Object.keys(all!.commands).sort()).toEqual(["evalsha", "zrem"]);
		expect([none!.upstashCommandsPerRequest, rates!.upstashCommandsPerRequest, all!.upstashCommandsPerRequest]).toEqual([1, 1, 2]);
		for (const result of results) {
			expect(Object.keys(result.statusCounts)).toEqual(["200"]);
			for (const figure of [result.requestsPerSec, result.cpuMsPerRequest, result.inProcessCpuMsPerRequest]) expect(Number.isFinite(figure) && figure > 0).toBe(true);
		}
		const report = formatLimitsReport(results, together);
		expect(report).toContain(together ? "Loaded together (--together): each round loaded every row at once" : "Each round loaded one row after another");
		expect(report).toContain("| rpm+rpd+concurrent |");
		expect(report).toContain("Budget against rpm+rpd, the reservation alone (rpm+rpd+budget-unreported)");
		expect(report).toMatch(/\(rpm\+rpd\+budget\): workerd CPU \d\.\d{3}x \(the median of the rounds' ratios: \d\.\d{3}; the ratio of the medians \d\.\d{3}x\)/);
		for (const result of results) expect(result.cpuMsPerRound).toEqual([result.cpuMsPerRequest]);
	});
});

describe("npm run bench -- --only limits: its options", () => {
	it.each([0, 1.5, -2])("refuses %s clients before it starts anything", async (clients) => {
		await expect(runLimitsBench({ durationSec: 1, rounds: 1, connections: 1, clients, log: () => {} })).rejects.toThrow(`clients must be a positive integer, not ${clients}`);
	});
});
