import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * Bundles a Worker entry as `wrangler deploy` ships it (same config, same bundler), into
 * `outdir/index.js`. Without `entry`, the entry of wrangler.toml.
 */
export function bundleWorker(outdir: string, entry?: string): string {
	mkdirSync(outdir, { recursive: true });
	execFileSync("wrangler", ["deploy", ...(entry ? [entry] : []), "--dry-run", "--outdir", outdir], {
		stdio: ["ignore", "ignore", "inherit"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG: "error" },
	});
	// wrangler names the bundle after its entry file.
	return join(outdir, basename(entry ?? "index.ts").replace(/\.ts$/, ".js"));
}
