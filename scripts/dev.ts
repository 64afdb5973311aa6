// `npm run dev`: the gateway on http://127.0.0.1:8787 with the demo origin on 8788, the
// memory replay store (unless .dev.vars points at Upstash) and a local Durable Object.
//   npm run dev -- [--port 8787] [--origin-port 8788]
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { listenFailure, parseOptions, portOption, readDotenv, runMain } from "./lib/cli.ts";
import { ensureDevKeyringKey } from "./lib/keyring-key.ts";
import { startDemoOrigin, type DemoOrigin } from "./lib/demo-origin.ts";
import { portOpen } from "./lib/processes.ts";

const CLI = {
	name: "dev",
	usage: [
		"usage: npm run dev -- [--port 8787] [--origin-port 8788]",
		"  Runs the gateway (wrangler dev) on 127.0.0.1:PORT with the settings of .dev.vars (created from",
		"  .dev.vars.example on the first run), and the demo origin on 127.0.0.1:ORIGIN-PORT. The Worker's",
		"  log lines appear in this terminal. Ctrl-C stops both.",
	].join("\n"),
};

let wrangler: ChildProcess | null = null;
let origin: DemoOrigin | null = null;
// Whatever ends this process, wrangler ends with it.
process.on("exit", () => {
	if (wrangler !== null && wrangler.exitCode === null) wrangler.kill("SIGKILL");
});

async function main(): Promise<number> {
	const values = parseOptions(CLI, {
		port: { type: "string", default: "8787" },
		"origin-port": { type: "string", default: "8788" },
	});
	const port = portOption("port", values.port);
	const originPort = portOption("origin-port", values["origin-port"]);
	if (await portOpen(port)) {
		console.error(`dev: port ${port} on 127.0.0.1 is already in use (another npm run dev?); choose another with --port N`);
		return 1;
	}

	if (!existsSync(".dev.vars")) {
		copyFileSync(".dev.vars.example", ".dev.vars");
		console.log("created .dev.vars from .dev.vars.example");
	}
	if (ensureDevKeyringKey(".dev.vars")) console.log("added a fresh KEYRING_KEY to .dev.vars (the keyring's key: npm run keys)");
	const originUrl = readDotenv(readFileSync(".dev.vars", "utf8")).get("ORIGIN_URL");
	try {
		origin = await startDemoOrigin({ port: originPort });
	} catch (error) {
		console.error(`dev: demo origin: ${listenFailure(error, originPort, "--origin-port")}`);
		return 1;
	}
	console.log(`demo origin on ${origin.url}`);
	if (originUrl !== undefined && /^http:\/\/(127\.0\.0\.1|localhost):/.test(originUrl) && new URL(originUrl).port !== String(originPort)) {
		console.log(`note: ORIGIN_URL in .dev.vars is ${originUrl}, not this demo origin`);
	}

	wrangler = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false"], {
		stdio: "inherit",
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	const child = wrangler;
	const stop = () => child.kill("SIGINT");
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
	return new Promise<number>((resolve) => {
		child.on("error", (error) => {
			console.error(`dev: could not start wrangler: ${error.message} (run it through npm run dev)`);
			resolve(1);
		});
		child.on("exit", (code) => resolve(code ?? 0));
	}).finally(() => origin?.close());
}

runMain(CLI, main);
