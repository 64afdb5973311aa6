import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { workerBindings } from "./test/fixtures/worker-bindings.ts";

// Two projects in one run: tests inside workerd (the Worker's own code, with fakes for the
// world outside), and tests in Node that start processes (redis-server, the local Upstash
// server, Prometheus, several gateways through Miniflare's API).
export default defineConfig({
	test: {
		// Vitest's default is one worker less than the cores: one file at a time on a 2-core
		// machine, while most Node test files spend their time waiting on the processes they
		// started (redis-server, workerd, Prometheus). Three files at once halves the suite there.
		maxWorkers: Math.max(3, availableParallelism()),
		projects: [
			{
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// Every setting of src/env.ts, pinned or empty (unset), so a developer's .dev.vars
							// or .env (which wrangler adds: ORIGIN_TOKEN, KEYRING_KEY, CLIENT_LIMITS...) and wrangler.toml's
							// [vars] change nothing the tests see (test/worker/bindings.test.ts).
							bindings: workerBindings(readFileSync("src/env.ts", "utf8")),
						},
					}),
				],
				test: {
					name: "workers",
					include: ["src/**/*.test.ts", "test/worker/**/*.test.ts"],
					// A budget, not a performance goal: a loaded 2-core machine must not fail a correct test.
					testTimeout: 30_000,
				},
			},
			{
				test: {
					name: "node",
					include: ["test/node/**/*.test.ts"],
					environment: "node",
					globalSetup: ["test/node/global-setup.ts"],
					testTimeout: 60_000,
					hookTimeout: 120_000,
				},
			},
		],
	},
});
