// `npm run dev`: the gateway on http://127.0.0.1:8787 with the demo origin on 8788, the
// memory replay store (unless .dev.vars points at Upstash) and a local Durable Object.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { startDemoOrigin } from "./lib/demo-origin.ts";

if (!existsSync(".dev.vars")) {
	copyFileSync(".dev.vars.example", ".dev.vars");
	console.log("created .dev.vars from .dev.vars.example");
}
const origin = await startDemoOrigin({ port: 8788 });
console.log(`demo origin on ${origin.url}`);

const wrangler = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", "8787", "--show-interactive-dev-session=false"], {
	stdio: "inherit",
	env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const stop = () => wrangler.kill("SIGINT");
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
wrangler.on("exit", async (code) => {
	await origin.close();
	process.exit(code ?? 0);
});
