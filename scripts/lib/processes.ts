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

/** Whether something accepts TCP connections on a loopback port now. */
export function portOpen(port: number): Promise<boolean> {
	return new Promise<boolean>((resolve) => {
		const socket = net.createConnection({ port, host: "127.0.0.1" });
		socket.once("connect", () => {
			socket.destroy();
			resolve(true);
		});
		socket.once("error", () => resolve(false));
	});
}

export async function waitForPort(port: number, timeoutMs = 10_000, alive: () => boolean = () => true): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await portOpen(port)) return;
		if (!alive()) throw new Error(`the process meant to listen on port ${port} exited`);
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
	/** Kills it at once, synchronously (for `process.on("exit")`, where nothing can be awaited). */
	killNow(): void;
}

let pdeathsigChecked: boolean | undefined;
const pdeathsigAvailable = () =>
	(pdeathsigChecked ??= spawnSync("setpriv", ["--pdeathsig", "KILL", "true"], { stdio: "ignore" }).status === 0);

/** Starts a throwaway redis-server on loopback, without persistence. */
export async function startRedisServer(port?: number): Promise<RedisProcess> {
	if (!hasProgram("redis-server")) throw new Error("redis-server is not installed (Debian package redis-server)");
	const chosen = port ?? (await freePort());
	const pdeathsig = pdeathsigAvailable();
	let child: ChildProcess | null = null;

	const args = ["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"];
	// Where util-linux's setpriv exists (Linux), the kernel kills redis-server when its parent
	// dies, even by SIGKILL, so it never outlives the process that started it.
	const [command, commandArgs]: [string, string[]] = pdeathsig ? ["setpriv", ["--pdeathsig", "KILL", "redis-server", ...args]] : ["redis-server", args];
	const launch = async () => {
		const started = spawn(command, commandArgs, { stdio: "ignore" });
		child = started;
		try {
			await waitForPort(chosen, 10_000, () => started.exitCode === null && started.signalCode === null);
		} catch (error) {
			started.kill("SIGKILL");
			throw error;
		}
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
	const killNow = () => {
		const current: ChildProcess | null = child;
		child = null;
		if (current !== null && current.exitCode === null) current.kill("SIGKILL");
	};
	await launch();
	return { port: chosen, stop, restart: launch, killNow };
}
