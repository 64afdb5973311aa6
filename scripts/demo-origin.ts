// Runs the demo agent backend: npm run demo-origin -- [--port 8788]
import { parseArgs } from "node:util";
import { startDemoOrigin } from "./lib/demo-origin.ts";

const { values } = parseArgs({ options: { port: { type: "string", default: "8788" } } });
const origin = await startDemoOrigin({ port: Number(values.port) });
console.log(`demo origin on ${origin.url} (POST /agent/chat, GET /agent/stream)`);
process.on("SIGINT", () => origin.close().then(() => process.exit(0)));
process.on("SIGTERM", () => origin.close().then(() => process.exit(0)));
