import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import net from "node:net";

/** A free loopback port, found by binding port 0. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
	});
}

/** Whether a program is on PATH. */
export function hasProgram(name: string): boolean {
	return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const open = await new Promise<boolean>((resolve) => {
			const socket = net.createConnection({ port, host: "127.0.0.1" });
			socket.once("connect", () => {
				socket.destroy();
				resolve(true);
			});
			socket.once("error", () => resolve(false));
		});
		if (open) return;
		if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

export interface RedisProcess {
	port: number;
	/** Stops the server (SIGKILL: an outage, not a clean shutdown). */
	stop(): Promise<void>;
	/** Starts it again on the same port. */
	restart(): Promise<void>;
}

/** Starts a throwaway redis-server on loopback, without persistence. */
export async function startRedisServer(port?: number): Promise<RedisProcess> {
	if (!hasProgram("redis-server")) throw new Error("redis-server is not installed (Debian package redis-server)");
	const chosen = port ?? (await freePort());
	let child: ChildProcess | null = null;

	const launch = async () => {
		child = spawn(
			"redis-server",
			["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"],
			{ stdio: "ignore" },
		);
		await waitForPort(chosen);
	};
	const stop = async () => {
		const current = child;
		child = null;
		if (current === null || current.exitCode !== null) return;
		await new Promise<void>((resolve) => {
			current.once("exit", () => resolve());
			current.kill("SIGKILL");
		});
	};
	await launch();
	return { port: chosen, stop, restart: launch };
}
