// Runs the demo agent backend: npm run demo-origin -- [--port 8788] [--gateway URL]
import { listenFailure, parseOptions, portOption, runMain, UsageError } from "./lib/cli.ts";
import { startDemoOrigin } from "./lib/demo-origin.ts";

const CLI = {
	name: "demo-origin",
	usage: [
		"usage: npm run demo-origin -- [--port 8788] [--gateway http://127.0.0.1:8787]",
		"  Runs the demo agent backend on 127.0.0.1:PORT: POST /agent/chat answers JSON, GET /agent/stream",
		'  answers NDJSON lines ({"type":"start"}, N {"type":"token","text":...}, {"type":"done"}).',
		"  Query: tokens=N (5), interval_ms=MS before each token (100), delay_ms=MS before the headers (0),",
		"  stall_after=N (go quiet after N tokens). docs/protocol.md, section 9. A request with a token budget",
		"  stops at its X-Token-Hold and reports what it spent: X-Token-Usage on a chat answer, POST",
		"  GATEWAY/gateway/usage after a stream (with the ORIGIN_TOKEN the gateway sent as X-Gateway-Token).",
		"  Budget query: spend=N (the tokens a chat answer spends; its word count), report=header|route|both|none",
		"  (header on chat, route on a stream), ignore_hold=1 (spend past X-Token-Hold, as a faulty backend would).",
		"  Ctrl-C stops it.",
	].join("\n"),
};

async function main(): Promise<number> {
	const values = parseOptions(CLI, { port: { type: "string", default: "8788" }, gateway: { type: "string", default: "http://127.0.0.1:8787" } });
	const port = portOption("port", values.port, true);
	if (!/^https?:\/\/[^/]+\/?$/.test(values.gateway)) throw new UsageError("--gateway must be an http(s) URL without a path");
	let origin;
	try {
		origin = await startDemoOrigin({ port, gatewayUrl: values.gateway });
	} catch (error) {
		console.error(`demo-origin: ${listenFailure(error, port, "--port")}`);
		return 1;
	}
	console.log(`demo origin on ${origin.url} (POST /agent/chat, GET /agent/stream; usage reports to ${values.gateway})`);
	const stop = () => void origin.close().then(() => process.exit(0));
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
	return new Promise<number>(() => {}); // runs until a signal
}

runMain(CLI, main);
