import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { build } from "esbuild";

/**
 * Builds the `./client` package entry as `npm pack` ships it: one ES module bundled by
 * esbuild (`dist/client/index.js`, its dependencies inside, so the package installs with no
 * runtime dependency), and the type declarations from `tsc` only.
 */
export async function buildClient(outdir = "dist"): Promise<void> {
	rmSync(outdir, { recursive: true, force: true });
	await build({
		entryPoints: ["src/client/index.ts"],
		outfile: `${outdir}/client/index.js`,
		bundle: true,
		format: "esm",
		// WebCrypto and TextEncoder only: the same file runs in Node 22, browsers and Workers.
		platform: "neutral",
		target: "es2023",
		logLevel: "warning",
	});
	execFileSync("tsc", ["-p", "tsconfig.client.json", "--emitDeclarationOnly", "--outDir", outdir], {
		stdio: "inherit",
		env: { ...process.env, PATH: `node_modules/.bin:${process.env.PATH ?? ""}` },
	});
}
