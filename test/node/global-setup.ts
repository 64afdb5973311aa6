import type { TestProject } from "vitest/node";
import { bundleWorker } from "../../scripts/lib/build.ts";

/** Bundles the Worker as it ships, once, for the tests that run it through Miniflare's API. */
export default function setup(project: TestProject): void {
	project.provide("bundlePath", bundleWorker(".build/test-bundle"));
}

declare module "vitest" {
	export interface ProvidedContext {
		bundlePath: string;
	}
}
