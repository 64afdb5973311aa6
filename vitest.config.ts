import { availableParallelism } from "node:os";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

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
							// Every setting the entry's tests rely on is pinned here, so a developer's
							// .dev.vars (which wrangler would add) cannot change what they see.
							bindings: {
								ENVIRONMENT: "test",
								UPSTASH_REDIS_REST_URL: "",
								UPSTASH_REDIS_REST_TOKEN: "",
								METRICS_TOKEN: "",
								HMAC_CLIENTS: "",
								ALLOW_TEST_STUBS: "",
								ORIGIN_URL: "http://origin.invalid",
								HMAC_SECRET: "entry-test-secret",
								// npm run dev puts a KEYRING_KEY in .dev.vars: the entry's tests run without the keyring.
								KEYRING_KEY: "",
								METRICS_FLUSH_MS: "1000",
							},
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
