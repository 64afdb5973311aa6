import { execFileSync } from "node:child_process";
import type { TestProject } from "vitest/node";
import { bundleWorker } from "../../scripts/lib/build.ts";

/**
 * Bundles the Worker as it ships, once, for the tests that run it through Miniflare's API;
 * builds the client package entry (dist/) as `npm pack` would.
 */
export default function setup(project: TestProject): void {
	execFileSync("tsc", ["-p", "tsconfig.client.json"], { stdio: "inherit" });
	project.provide("bundlePath", bundleWorker(".build/test-bundle"));
}

declare module "vitest" {
	export interface ProvidedContext {
		bundlePath: string;
	}
}
