import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { freePort } from "../../scripts/lib/processes.ts";
import { parseExposition, valueOf } from "../fixtures/exposition.ts";
import { signed, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { until } from "./helpers/until.ts";

const TOKEN = "scrape-token";
const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };

/** The traffic of the tests below, and what it must count: per isolate, then summed. */
async function mixedTraffic(gateway: RunningGateway, isolate: number, okCount: number): Promise<void> {
	for (let i = 0; i < okCount; i++) {
		const request = await signed({ body: JSON.stringify({ n: i, isolate, at: Date.now() }) });
		expect((await gateway.fetch(request.path, request.init, isolate)).status).toBe(200);
		if (i === 0) expect((await gateway.fetch(request.path, request.init, isolate)).status).toBe(409);
	}
	const forged = await signed({ secret: "wrong" });
	expect((await gateway.fetch(forged.path, forged.init, isolate)).status).toBe(403);
	expect((await gateway.fetch("/agent/chat", { method: "POST", body: "{}" }, isolate)).status).toBe(401);
	const stub = await gateway.fetch("/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }, isolate);
	expect(stub.status).toBe(200);
	const skewed = await signed({ timestamp: Date.now() - 3_600_000 });
	expect((await gateway.fetch(skewed.path, skewed.init, isolate)).status).toBe(408);
}

function run(command: string, args: string[], input: string): Promise<{ code: number; output: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
		let output = "";
		child.stdout.on("data", (chunk) => (output += chunk));
		child.stderr.on("data", (chunk) => (output += chunk));
		child.on("error", reject);
		child.on("close", (code) => resolve({ code: code ?? -1, output }));
		child.stdin.end(input);
	});
}

describe("metrics summed across isolates through the Durable Object", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;
	let text: string;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url, METRICS_TOKEN: TOKEN, METRICS_FLUSH_MS: "200" }, { isolates: 2 });
		await mixedTraffic(gateway, 0, 3);
		await mixedTraffic(gateway, 1, 2);
		// No further request: the other isolate's last events (its clock refusal is the last) still
		// arrive with a flush of their own, which the scrape through isolate 0 waits for.
		const scrape = async () => {
			const response = await gateway.fetch("/metrics", auth, 0);
			expect(response.status).toBe(200);
			return response.text();
		};
		await until(async () => valueOf(parseExposition((text = await scrape())), "agent_chat_requests_total", { auth: "fail", mode: "clock_skew" }) === 2, "isolate 1's flush");
	});
	afterAll(async () => {
		await gateway?.close();
		await origin?.close();
	});

	it("adds up the counts of two isolates exactly", () => {
		const families = parseExposition(text);
		expect(valueOf(families, "agent_metrics_aggregated")).toBe(1);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "ok", mode: "real" })).toBe(5);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "fail", mode: "replay" })).toBe(2);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "fail", mode: "bad_signature" })).toBe(2);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "fail", mode: "missing_headers" })).toBe(2);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "fail", mode: "clock_skew" })).toBe(2);
		expect(valueOf(families, "agent_chat_requests_total", { auth: "bypass", mode: "stub" })).toBe(2);
		expect(valueOf(families, "agent_chat_replay_attempts_total")).toBe(2);
		// Signed requests only: 5 accepted + 2 replays + 2 skewed.
		expect(valueOf(families, "agent_auth_skew_milliseconds_count")).toBe(9);
		expect(valueOf(families, "agent_auth_skew_milliseconds_bucket", { le: "300000.0" })).toBe(7);
		expect(valueOf(families, "agent_origin_responses_total", { outcome: "ok" })).toBe(5);
	});

	it("passes our own checks: families in one block, no duplicate series, cumulative buckets, +Inf = _count", () => {
		const families = parseExposition(text);
		expect([...families.keys()]).toContain("agent_replay_store_duration_seconds");
		for (const family of families.values()) expect(family.help.length).toBeGreaterThan(0);
		// No label carries caller input.
		expect(text).not.toMatch(/svc-node|\/agent\/chat/);
	});

	it.skipIf(!available("promtool", "prometheus"))("promtool check metrics prints only the one accepted line (the kept millisecond name)", async () => {
		const { code, output } = await run("promtool", ["check", "metrics"], text);
		expect(output.trim()).toBe('agent_auth_skew_milliseconds use base unit "seconds" instead of "milliseconds"');
		expect(code).toBe(3);
	});
});

describe("metrics survive a restart of the Durable Object (persisted storage)", () => {
	it("counters never go back", async () => {
		const origin = await startDemoOrigin();
		const directory = mkdtempSync(join(tmpdir(), "gateway-persist-"));
		try {
			const bindings = { ORIGIN_URL: origin.url, METRICS_TOKEN: TOKEN };
			const first = await startGateway(bindings, { persistTo: directory });
			for (let i = 0; i < 3; i++) {
				const request = await signed({ body: `{"i":${i}}` });
				expect((await first.fetch(request.path, request.init)).status).toBe(200);
			}
			const before = valueOf(parseExposition(await (await first.fetch("/metrics", auth)).text()), "agent_chat_requests_total", { auth: "ok", mode: "real" });
			expect(before).toBe(3);
			await first.close();

			const second = await startGateway(bindings, { persistTo: directory });
			try {
				const request = await signed({ body: '{"after":true}' });
				expect((await second.fetch(request.path, request.init)).status).toBe(200);
				const after = parseExposition(await (await second.fetch("/metrics", auth)).text());
				expect(valueOf(after, "agent_metrics_aggregated")).toBe(1);
				expect(valueOf(after, "agent_chat_requests_total", { auth: "ok", mode: "real" })).toBe(4);
			} finally {
				await second.close();
			}
		} finally {
			await origin.close();
			rmSync(directory, { recursive: true, force: true });
		}
	});
});

describe.skipIf(!available("prometheus", "prometheus"))("a real Prometheus scraping the gateway", () => {
	let origin: DemoOrigin;
	let gateway: RunningGateway;
	let prometheus: ReturnType<typeof spawn>;
	let directory: string;
	let prometheusUrl: string;

	beforeAll(async () => {
		origin = await startDemoOrigin();
		gateway = await startGateway({ ORIGIN_URL: origin.url, METRICS_TOKEN: TOKEN, METRICS_FLUSH_MS: "200" }, { isolates: 2 });
		await mixedTraffic(gateway, 0, 4);
		await mixedTraffic(gateway, 1, 3);
		directory = mkdtempSync(join(tmpdir(), "gateway-prometheus-"));
		const target = new URL(gateway.url);
		writeFileSync(
			join(directory, "prometheus.yml"),
			[
				"global:",
				"  scrape_interval: 1s",
				"scrape_configs:",
				"  - job_name: gateway",
				"    metrics_path: /metrics",
				"    authorization:",
				`      credentials: ${TOKEN}`,
				"    static_configs:",
				`      - targets: ["${target.host}"]`,
				"",
			].join("\n"),
		);
		const port = await freePort();
		prometheusUrl = `http://127.0.0.1:${port}`;
		prometheus = spawn(
			"prometheus",
			[`--config.file=${join(directory, "prometheus.yml")}`, `--storage.tsdb.path=${join(directory, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
			{ stdio: "ignore" },
		);
	});
	afterAll(async () => {
		prometheus?.kill("SIGKILL");
		await gateway?.close();
		await origin?.close();
		if (directory) rmSync(directory, { recursive: true, force: true });
	});

	async function query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
		const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
		const body = (await response.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
		expect(body.status).toBe("success");
		return body.data.result;
	}

	it("its HTTP API returns agent_chat_requests_total with the counts the test produced, each exactly once", async () => {
		const deadline = Date.now() + 30_000;
		let results: Awaited<ReturnType<typeof query>> = [];
		while (Date.now() < deadline) {
			results = await query('agent_chat_requests_total{auth="ok",mode="real"}').catch(() => []);
			if (results.length > 0) break;
			await new Promise((resolve) => setTimeout(resolve, 500));
		}
		expect(results).toHaveLength(1);
		expect(results[0]!.metric).toMatchObject({ job: "gateway", auth: "ok", mode: "real" });
		expect(results[0]!.metric.aggregation).toBeUndefined();
		expect(results[0]!.value[1]).toBe("7");
		const replays = await query("agent_chat_replay_attempts_total");
		expect(replays.map((r) => r.value[1])).toEqual(["2"]);
		const up = await query('up{job="gateway"}');
		expect(up.map((r) => r.value[1])).toEqual(["1"]);
	});
});
