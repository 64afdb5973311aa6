// `npm run upstash-server`: the Upstash-REST-compatible server (lib/upstash-server.ts) over a
// real redis-server, for development. `npm run upstash-server -- --help` for the usage.
import { portOpen, startRedisServer, type RedisProcess } from "./lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "./lib/upstash-server.ts";
import { listenFailure, parseOptions, portOption, runMain } from "./lib/cli.ts";

const CLI = {
	name: "upstash-server",
	usage: [
		"usage: npm run upstash-server -- [--port 8079] [--token TOKEN] [--redis-port N] [--spawn-redis]",
		"  Serves Upstash's REST protocol on 127.0.0.1:PORT over a redis-server, and prints the two settings",
		"  to put in .dev.vars. Ctrl-C stops it.",
		"  Without --spawn-redis: the redis-server listening on --redis-port (default 6379).",
		"  With --spawn-redis: a throwaway redis-server (nothing saved) on --redis-port, or on a free port",
		"  without it, stopped with this server.",
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
	const chosenRedisPort = values["redis-port"] === undefined ? undefined : portOption("redis-port", values["redis-port"]);
	let redisPort = chosenRedisPort ?? 6379;
	if (!values["spawn-redis"] && !(await portOpen(redisPort))) {
		console.error(`upstash-server: nothing listens on 127.0.0.1:${redisPort} (--redis-port): start redis-server there, or use --spawn-redis`);
		return 1;
	}
	// A busy port would let the spawned redis-server fail while the one already there answers.
	if (values["spawn-redis"] && chosenRedisPort !== undefined && (await portOpen(chosenRedisPort))) {
		console.error(`upstash-server: ${listenFailure({ code: "EADDRINUSE" }, chosenRedisPort, "--redis-port")}`);
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
		redis = await startRedisServer(chosenRedisPort);
		redisPort = redis.port;
		console.log(`spawned redis-server on port ${redisPort}`);
	}
	try {
		server = await startUpstashServer({ port, token: values.token, redisPort });
	} catch (error) {
		console.error(`upstash-server: ${listenFailure(error, port, "--port")}`);
		await stop(1);
	}
	console.log(`Upstash-compatible server on ${server!.url} (redis-server on port ${redisPort})`);
	console.log(`  UPSTASH_REDIS_REST_URL=${server!.url}`);
	console.log(`  UPSTASH_REDIS_REST_TOKEN=${values.token}`);
	return new Promise<number>(() => {}); // runs until a signal
}

runMain(CLI, main);
