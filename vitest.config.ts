import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects in one run: tests inside workerd (the Worker's own code, with fakes for the
// world outside), and tests in Node that start processes (redis-server, the local Upstash
// server, Prometheus, several gateways through Miniflare's API).
export default defineConfig({
	test: {
		projects: [
			{
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								ENVIRONMENT: "test",
								ORIGIN_URL: "http://origin.invalid",
								HMAC_SECRET: "entry-test-secret",
								METRICS_FLUSH_MS: "1000",
							},
						},
					}),
				],
				test: {
					name: "workers",
					include: ["src/**/*.test.ts", "test/worker/**/*.test.ts"],
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
