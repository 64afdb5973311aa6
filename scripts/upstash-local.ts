// Runs the Upstash-REST-compatible server over a real redis-server, for development.
//   npm run upstash-local -- [--port 8079] [--token local-dev-token] [--redis-port 6379 | --spawn-redis]
import { parseArgs } from "node:util";
import { startRedisServer } from "./lib/processes.ts";
import { startUpstashServer } from "./lib/upstash-server.ts";

const { values } = parseArgs({
	options: {
		port: { type: "string", default: "8079" },
		token: { type: "string", default: process.env.UPSTASH_REDIS_REST_TOKEN ?? "local-dev-token" },
		"redis-port": { type: "string" },
		"spawn-redis": { type: "boolean", default: false },
	},
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	console.error("--port must be a port number");
	process.exit(2);
}
let redisPort = Number(values["redis-port"] ?? 6379);
let stopRedis: (() => Promise<void>) | null = null;
if (values["spawn-redis"]) {
	const redis = await startRedisServer();
	redisPort = redis.port;
	stopRedis = redis.stop;
}
const server = await startUpstashServer({ port, token: values.token, redisPort });
console.log(`Upstash-compatible server on ${server.url} (redis-server on port ${redisPort})`);
console.log(`  UPSTASH_REDIS_REST_URL=${server.url}`);
console.log(`  UPSTASH_REDIS_REST_TOKEN=${values.token}`);

const shutdown = async () => {
	await server.close();
	await stopRedis?.();
	process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
