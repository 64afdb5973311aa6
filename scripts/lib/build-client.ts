import { execFileSync } from "node:child_process";
import { cpSync, readdirSync, rmSync } from "node:fs";
import { build } from "esbuild";

/**
 * Builds the `./client` package entry as `npm pack` ships it: one ES module bundled by
 * esbuild (`dist/client/index.js`, its dependencies inside, so the package installs with no
 * runtime dependency), and the type declarations from `tsc` only. The signature vectors ship
 * beside it (`dist/vectors/*.json`, the package's `./vectors/*` entry), so a client team in any
 * language checks its signer against the cases the gateway is tested with.
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
	for (const name of readdirSync("test/vectors").filter((file) => file.endsWith(".json"))) cpSync(`test/vectors/${name}`, `${outdir}/vectors/${name}`);
	execFileSync("tsc", ["-p", "tsconfig.client.json", "--emitDeclarationOnly", "--outDir", outdir], {
		stdio: "inherit",
		env: { ...process.env, PATH: `node_modules/.bin:${process.env.PATH ?? ""}` },
	});
}
