// Runs the demo agent backend: npm run demo-origin -- [--port 8788]
import { listenFailure, parseOptions, portOption, runMain } from "./lib/cli.ts";
import { startDemoOrigin } from "./lib/demo-origin.ts";

const CLI = {
	name: "demo-origin",
	usage: [
		"usage: npm run demo-origin -- [--port 8788]",
		"  Runs the demo agent backend on 127.0.0.1:PORT: POST /agent/chat answers JSON, GET /agent/stream",
		'  answers NDJSON lines ({"type":"start"}, N {"type":"token","text":...}, {"type":"done"}).',
		"  Query: tokens=N (5), interval_ms=MS before each token (100), delay_ms=MS before the headers (0),",
		"  stall_after=N (go quiet after N tokens). docs/protocol.md, section 9. Ctrl-C stops it.",
	].join("\n"),
};

async function main(): Promise<number> {
	const values = parseOptions(CLI, { port: { type: "string", default: "8788" } });
	const port = portOption("port", values.port, true);
	let origin;
	try {
		origin = await startDemoOrigin({ port });
	} catch (error) {
		console.error(`demo-origin: ${listenFailure(error, port, "--port")}`);
		return 1;
	}
	console.log(`demo origin on ${origin.url} (POST /agent/chat, GET /agent/stream)`);
	const stop = () => void origin.close().then(() => process.exit(0));
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
	return new Promise<number>(() => {}); // runs until a signal
}

runMain(CLI, main);
