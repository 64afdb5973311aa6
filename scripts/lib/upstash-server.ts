import http from "node:http";
import type { AddressInfo } from "node:net";
import { RespConnection, RespError, type RespValue } from "./resp.ts";

/**
 * Faults a test can inject, to see the gateway treat them as store failures:
 * `delayMs` before answering, plus a random extra of up to `jitterMs` per request (a slow,
 * uneven network); `mode` for the shape of the answer. `drop_after_set` applies the command
 * to Redis and then drops the connection without an answer: the write landed, its answer was lost.
 */
export interface UpstashFaults {
	delayMs: number;
	jitterMs: number;
	mode: "none" | "http500" | "non_json" | "error_body" | "unexpected_result" | "drop_after_set";
}

export interface UpstashServerOptions {
	/** Port of the redis-server behind it. */
	redisPort: number;
	redisHost?: string;
	token: string;
	/** 0 picks a free port. */
	port?: number;
	host?: string;
}

export interface UpstashServer {
	url: string;
	port: number;
	faults: UpstashFaults;
	/**
	 * Since start (or the last `resetStats`): requests, commands by lowercase name, and SETs
	 * that Redis answered OK (claims made).
	 */
	stats: { requests: number; commands: Map<string, number>; setOk: number };
	resetStats(): void;
	close(): Promise<void>;
}

type Command = string[];
type Reply = { result: unknown } | { error: string };

/**
 * A local server that speaks the Upstash Redis REST protocol as `@upstash/redis` uses it
 * (`POST /`, `/pipeline`, `/multi-exec`, bearer token, `Upstash-Encoding: base64`), in
 * front of a real redis-server. Every command goes to Redis as sent, scripts included
 * (`EVALSHA`, `EVAL`, `SCRIPT LOAD`: the per-client limits' script), and a Redis error such
 * as `NOSCRIPT` comes back as `{error}` with 400, as Upstash answers it.
 */
export async function startUpstashServer(options: UpstashServerOptions): Promise<UpstashServer> {
	let connection: Promise<RespConnection> | null = null;
	const redis = async (): Promise<RespConnection> => {
		if (connection !== null) {
			const current = await connection.catch(() => null);
			if (current !== null && !current.closed) return current;
		}
		connection = RespConnection.connect(options.redisPort, options.redisHost);
		connection.catch(() => {
			connection = null;
		});
		return connection;
	};

	const faults: UpstashFaults = { delayMs: 0, jitterMs: 0, mode: "none" };
	const stats = { requests: 0, commands: new Map<string, number>(), setOk: 0 };

	const server = http.createServer((request, response) => {
		handle(request, response).catch((error: unknown) => {
			send(response, 500, { error: `ERR local server failure: ${error instanceof Error ? error.message : String(error)}` });
		});
	});

	async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
		const body = await readBody(request);
		if (request.method !== "POST") return send(response, 405, { error: "ERR only POST is supported" });
		if (request.headers.authorization !== `Bearer ${options.token}`) return send(response, 401, { error: "Unauthorized" });
		const path = new URL(request.url ?? "/", "http://local").pathname.replace(/\/+$/, "") || "/";
		const base64 = String(request.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";

		let parsed: unknown;
		try {
			parsed = JSON.parse(body);
		} catch {
			return send(response, 400, { error: "ERR failed to parse command" });
		}
		stats.requests++;

		const delayMs = faults.delayMs + Math.random() * faults.jitterMs;
		if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
		if (response.destroyed) return;
		switch (faults.mode) {
			case "http500":
				return send(response, 500, { error: "ERR injected server failure" });
			case "non_json":
				response.writeHead(200, { "Content-Type": "text/html" }).end("<html>bad gateway</html>");
				return;
			case "error_body":
				return send(response, 400, { error: "ERR injected error" });
			case "unexpected_result":
				return send(response, 200, path === "/" ? { result: "QUEUED" } : [{ result: "QUEUED" }]);
			case "none":
			case "drop_after_set":
				break;
		}

		if (path === "/") {
			const command = toCommand(parsed);
			if (command === null) return send(response, 400, { error: "ERR a command is a non-empty array of strings" });
			count(command);
			let reply: RespValue;
			try {
				[reply] = (await (await redis()).send([command])) as [RespValue];
			} catch (error) {
				return send(response, 500, { error: `ERR redis unavailable: ${(error as Error).message}` });
			}
			if (command[0]!.toLowerCase() === "set" && reply === "OK") stats.setOk++;
			if (faults.mode === "drop_after_set") {
				request.socket.destroy();
				return;
			}
			if (reply instanceof RespError) return send(response, 400, { error: reply.message });
			return send(response, 200, { result: encode(reply, base64) });
		}

		if (path === "/pipeline" || path === "/multi-exec") {
			const commands = Array.isArray(parsed) ? parsed.map(toCommand) : null;
			if (commands === null || commands.length === 0 || commands.some((command) => command === null)) {
				return send(response, 400, { error: "ERR a pipeline is a non-empty array of commands" });
			}
			const list = commands as Command[];
			list.forEach(count);
			try {
				const connection = await redis();
				if (path === "/pipeline") {
					const replies = await connection.send(list);
					return send(response, 200, replies.map((reply) => toReply(reply, base64)));
				}
				const replies = await connection.send([["MULTI"], ...list, ["EXEC"]]);
				const exec = replies.at(-1);
				if (exec instanceof RespError) return send(response, 400, { error: exec.message });
				const queued = replies.slice(1, -1).find((reply) => reply instanceof RespError);
				if (queued instanceof RespError) return send(response, 400, { error: queued.message });
				if (!Array.isArray(exec)) return send(response, 400, { error: "ERR transaction aborted" });
				return send(response, 200, exec.map((reply) => toReply(reply, base64)));
			} catch (error) {
				return send(response, 500, { error: `ERR redis unavailable: ${(error as Error).message}` });
			}
		}
		return send(response, 404, { error: "ERR unknown endpoint" });
	}

	function count(command: Command): void {
		const name = command[0]!.toLowerCase();
		stats.commands.set(name, (stats.commands.get(name) ?? 0) + 1);
	}

	// A busy port rejects (EADDRINUSE) rather than crash the process with an unhandled 'error'.
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
			server.off("error", reject);
			resolve();
		});
	});
	const port = (server.address() as AddressInfo).port;
	return {
		url: `http://${options.host ?? "127.0.0.1"}:${port}`,
		port,
		faults,
		stats,
		resetStats() {
			stats.requests = 0;
			stats.commands.clear();
			stats.setOk = 0;
		},
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
			const current = await connection?.catch(() => null);
			current?.close();
		},
	};
}

function toCommand(value: unknown): Command | null {
	if (!Array.isArray(value) || value.length === 0) return null;
	const command: string[] = [];
	for (const part of value) {
		if (typeof part === "string") command.push(part);
		else if (typeof part === "number" || typeof part === "boolean") command.push(String(part));
		else return null;
	}
	return command;
}

function toReply(reply: RespValue, base64: boolean): Reply {
	return reply instanceof RespError ? { error: reply.message } : { result: encode(reply, base64) };
}

/** Upstash's JSON for a RESP value: with base64 encoding, every string but `OK` is base64. */
function encode(value: RespValue, base64: boolean): unknown {
	if (value === null || typeof value === "number") return value;
	if (value instanceof RespError) return { error: value.message };
	if (Array.isArray(value)) return value.map((item) => encode(item, base64));
	const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
	if (typeof value === "string" && value === "OK") return "OK";
	return base64 ? bytes.toString("base64") : bytes.toString("utf8");
}

function send(response: http.ServerResponse, status: number, body: unknown): void {
	if (response.headersSent || response.destroyed) return;
	response.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
}

function readBody(request: http.IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		request.on("data", (chunk: Buffer) => chunks.push(chunk));
		request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		request.on("error", reject);
	});
}
