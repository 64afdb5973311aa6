import { describe, expect, it } from "vitest";
import { formatKeyringReport, runKeyringScenarios } from "../../scripts/bench/keyring.ts";

// Not a benchmark: one short run, so the keyring scenarios cannot rot. No timing is asserted.
describe("npm run bench -- --only keyring (a short smoke run)", () => {
	it("answers every request 200 in all three scenarios, and a warm cache reads KV not once", async () => {
		const results = await runKeyringScenarios({ requests: 20, rounds: 1, manyClients: 300, log: () => {} });
		expect(results.map((r) => [r.name, r.clients])).toEqual([["hmac-clients", 30], ["keyring-1", 1], ["keyring-10k", 300]]);
		for (const result of results) {
			expect(Number.isFinite(result.cpuUsPerRequest) && result.cpuUsPerRequest > 0).toBe(true);
			expect(result.kvReads).toBe(0);
		}
		expect(formatKeyringReport(results)).toMatch(/^\| keyring-10k \| 300 \| \d+ \| \d\.\d{3} \| 0 \|$/m);
	});
});
