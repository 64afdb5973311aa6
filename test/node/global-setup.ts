import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import type { TestProject } from "vitest/node";

/** Bundles the Worker as it ships, once, for the tests that run it through Miniflare's API. */
export default function setup(project: TestProject): void {
	const outdir = ".build/test-bundle";
	mkdirSync(outdir, { recursive: true });
	execFileSync("wrangler", ["deploy", "--dry-run", "--outdir", outdir], {
		stdio: ["ignore", "ignore", "inherit"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG: "error" },
	});
	project.provide("bundlePath", `${outdir}/index.js`);
}

declare module "vitest" {
	export interface ProvidedContext {
		bundlePath: string;
	}
}
