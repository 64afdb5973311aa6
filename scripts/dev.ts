// `npm run dev`: the gateway on http://127.0.0.1:8787 with the demo origin on 8788, the
// memory replay store (unless .dev.vars points at Upstash) and a local Durable Object.
//   npm run dev -- [--port 8787] [--origin-port 8788]
import { spawn, type ChildProcess } from "node:child_process";
import { listenFailure, parseOptions, portOption, runMain } from "./lib/cli.ts";
import { readDevVars } from "./lib/dev-vars.ts";
import { prepareDevVars } from "./lib/keyring-key.ts";
import { startDemoOrigin, type DemoOrigin } from "./lib/demo-origin.ts";
import { portOpen } from "./lib/processes.ts";

const CLI = {
	name: "dev",
	usage: [
		"usage: npm run dev -- [--port 8787] [--origin-port 8788]",
		"  Runs the gateway (wrangler dev) on 127.0.0.1:PORT with the settings of .dev.vars (created from",
		"  .dev.vars.example on the first run), and the demo origin on 127.0.0.1:ORIGIN-PORT. The Worker's",
		"  log lines appear in this terminal. Ctrl-C stops both. The gateway forwards to this demo origin",
		"  (whatever its port) unless ORIGIN_URL in .dev.vars names a backend of your own.",
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

	// .dev.vars holds HMAC_SECRET and KEYRING_KEY: mode 0600, whoever made it.
	const devVars = prepareDevVars(".dev.vars", ".dev.vars.example");
	if (devVars.created) console.log("created .dev.vars from .dev.vars.example");
	if (devVars.keyAdded) console.log("added a fresh KEYRING_KEY to .dev.vars (the keyring's key: npm run keys)");
	const originUrl = readDevVars()?.get("ORIGIN_URL");
	try {
		// Its usage reports (token budgets) go to this gateway.
		origin = await startDemoOrigin({ port: originPort, gatewayUrl: `http://127.0.0.1:${port}` });
	} catch (error) {
		console.error(`dev: demo origin: ${listenFailure(error, originPort, "--origin-port")}`);
		return 1;
	}
	console.log(`demo origin on ${origin.url}`);
	// The example's ORIGIN_URL (http://127.0.0.1:8788) names the demo origin on its default port: when --origin-port
	// moves the demo origin, the gateway follows it (wrangler's --var wins over .dev.vars).
	// Any other ORIGIN_URL is a backend of the developer's own, left as it is.
	const followDemo = originUrl === undefined || originUrl === "" || /^http:\/\/(127\.0\.0\.1|localhost):8788\/?$/.test(originUrl);
	const overrides = followDemo && originUrl?.replace(/\/+$/, "") !== origin.url ? ["--var", `ORIGIN_URL:${origin.url}`] : [];
	if (overrides.length > 0) console.log(`the gateway forwards to ${origin.url} (ORIGIN_URL overridden for this run)`);
	if (!followDemo) console.log(`note: ORIGIN_URL in .dev.vars is ${originUrl}, not this demo origin`);

	wrangler = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false", ...overrides], {
		stdio: "inherit",
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	const child = wrangler;
	// Stopped on purpose (Ctrl-C, a signal) is a clean end, whatever status wrangler exits with.
	let stopping = false;
	const stop = () => {
		stopping = true;
		child.kill("SIGINT");
	};
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
	return new Promise<number>((resolve) => {
		child.on("error", (error) => {
			console.error(`dev: could not start wrangler: ${error.message} (run it through npm run dev)`);
			resolve(1);
		});
		child.on("exit", (code) => resolve(stopping ? 0 : (code ?? 0)));
	}).finally(() => origin?.close());
}

runMain(CLI, main);
