import { afterAll, afterEach, beforeAll } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../../scripts/lib/demo-origin.ts";
import { startRedisServer, type RedisProcess } from "../../../scripts/lib/processes.ts";
import { startUpstashServer, type UpstashServer } from "../../../scripts/lib/upstash-server.ts";
import { startGateway, type RunningGateway } from "./gateway.ts";

export interface UpstashStack {
	redis: RedisProcess;
	upstash: UpstashServer;
	origin: DemoOrigin;
	/** A gateway on this stack, with a replay prefix of its own unless `bindings` names one; closed after each test. */
	gateway(bindings?: Record<string, string>): Promise<RunningGateway>;
	/** Starts the Upstash server again on the same port, after a test closed it. */
	restartUpstash(): Promise<void>;
}

/**
 * A real redis-server, the local Upstash server in front of it, and the demo origin, for
 * the tests of one `describe`. Faults are cleared and gateways closed after each test.
 */
export function useUpstashStack(token: string, defaults: Record<string, string> = {}): UpstashStack {
	const gateways: RunningGateway[] = [];
	const stack = {
		async gateway(bindings: Record<string, string> = {}) {
			const running = await startGateway({
				ORIGIN_URL: stack.origin.url,
				UPSTASH_REDIS_REST_URL: stack.upstash.url,
				UPSTASH_REDIS_REST_TOKEN: token,
				REDIS_REPLAY_PREFIX: `test:${crypto.randomUUID()}:`,
				...defaults,
				...bindings,
			});
			gateways.push(running);
			return running;
		},
		async restartUpstash() {
			stack.upstash = await startUpstashServer({ redisPort: stack.redis.port, token, port: stack.upstash.port });
		},
	} as UpstashStack;

	beforeAll(async () => {
		stack.redis = await startRedisServer();
		stack.upstash = await startUpstashServer({ redisPort: stack.redis.port, token });
		stack.origin = await startDemoOrigin();
	});
	afterEach(async () => {
		stack.upstash.faults.delayMs = 0;
		stack.upstash.faults.jitterMs = 0;
		stack.upstash.faults.mode = "none";
		await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
	});
	afterAll(async () => {
		await stack.origin?.close();
		await stack.upstash?.close();
		await stack.redis?.stop();
	});
	return stack;
}
