import type { TestProject } from "vitest/node";
import { bundleWorker } from "../../scripts/lib/build.ts";
import { buildClient } from "../../scripts/lib/build-client.ts";

/**
 * Bundles the Worker as it ships, once, for the tests that run it through Miniflare's API;
 * builds the client package entry (dist/) as `npm pack` would.
 */
export default async function setup(project: TestProject): Promise<void> {
	await buildClient();
	project.provide("bundlePath", bundleWorker(".build/test-bundle"));
}

declare module "vitest" {
	export interface ProvidedContext {
		bundlePath: string;
	}
}
