// Runs the Upstash-REST-compatible server over a real redis-server, for development.
//   npm run upstash-local -- [--port 8079] [--token local-dev-token] [--redis-port 6379 | --spawn-redis]
import { portOpen, startRedisServer, type RedisProcess } from "./lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "./lib/upstash-server.ts";
import { listenFailure, parseOptions, portOption, runMain, UsageError } from "./lib/cli.ts";

const CLI = {
	name: "upstash-local",
	usage: [
		"usage: npm run upstash-local -- [--port 8079] [--token TOKEN] [--redis-port 6379 | --spawn-redis]",
		"  Serves Upstash's REST protocol on 127.0.0.1:PORT over a redis-server: the one on --redis-port",
		"  (default 6379, which must be listening), or with --spawn-redis a throwaway one on a free port,",
		"  stopped with this server. Prints the two settings to put in .dev.vars. Ctrl-C stops it.",
	].join("\n"),
};

let redis: RedisProcess | null = null;
let server: UpstashServer | null = null;
// Whatever ends this process, a redis-server it started ends with it.
process.on("exit", () => redis?.killNow());

async function main(): Promise<number> {
	const values = parseOptions(CLI, {
		port: { type: "string", default: "8079" },
		token: { type: "string", default: process.env.UPSTASH_REDIS_REST_TOKEN ?? "local-dev-token" },
		"redis-port": { type: "string" },
		"spawn-redis": { type: "boolean", default: false },
	});
	const port = portOption("port", values.port, true);
	if (values["spawn-redis"] && values["redis-port"] !== undefined) throw new UsageError("--redis-port and --spawn-redis exclude each other");
	let redisPort = portOption("redis-port", values["redis-port"] ?? "6379");
	if (!values["spawn-redis"] && !(await portOpen(redisPort))) {
		console.error(`upstash-local: nothing listens on 127.0.0.1:${redisPort} (--redis-port): start redis-server there, or use --spawn-redis`);
		return 1;
	}

	const stop = async (code: number) => {
		await server?.close();
		await redis?.stop();
		process.exit(code);
	};
	process.on("SIGINT", () => void stop(0));
	process.on("SIGTERM", () => void stop(0));

	if (values["spawn-redis"]) {
		redis = await startRedisServer();
		redisPort = redis.port;
		console.log(`spawned redis-server on port ${redisPort}`);
	}
	try {
		server = await startUpstashServer({ port, token: values.token, redisPort });
	} catch (error) {
		console.error(`upstash-local: ${listenFailure(error, port, "--port")}`);
		await stop(1);
	}
	console.log(`Upstash-compatible server on ${server!.url} (redis-server on port ${redisPort})`);
	console.log(`  UPSTASH_REDIS_REST_URL=${server!.url}`);
	console.log(`  UPSTASH_REDIS_REST_TOKEN=${values.token}`);
	return new Promise<number>(() => {}); // runs until a signal
}

runMain(CLI, main);
