import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A request as the origin saw it, for tests that check what the gateway forwarded. */
export interface RecordedRequest {
	method: string;
	path: string;
	query: string;
	headers: Record<string, string>;
	bodyLength: number;
	bodySha256: string;
	/** How the origin's answer ended: null while it is still being sent. */
	answerEnded: "finished" | "closed early" | null;
}

export interface DemoOrigin {
	url: string;
	port: number;
	/** Requests received under `/t/<id>/...`, by id (ORIGIN_URL may carry that prefix). */
	recorded(id: string): RecordedRequest[];
	close(): Promise<void>;
}

/**
 * A stand-in for the FastAPI agent backend: `POST /agent/chat` answers JSON in its shape,
 * `GET /agent/stream` sends NDJSON events (`start`, `token`..., `done`) over time.
 * Query knobs for tests: `delay_ms` (before the headers), `tokens`, `interval_ms`,
 * `stall_after` (stop sending after that many tokens, without ending).
 */
export async function startDemoOrigin(options: { port?: number; host?: string } = {}): Promise<DemoOrigin> {
	const recordings = new Map<string, RecordedRequest[]>();

	const server = http.createServer(async (request, response) => {
		const chunks: Buffer[] = [];
		for await (const chunk of request) chunks.push(chunk as Buffer);
		const body = Buffer.concat(chunks);
		const url = new URL(request.url ?? "/", "http://origin");

		let path = url.pathname;
		const prefixed = /^\/t\/([A-Za-z0-9-]+)(\/.*)$/.exec(path);
		if (prefixed !== null) {
			path = prefixed[2]!;
			const list = recordings.get(prefixed[1]!) ?? [];
			const recorded: RecordedRequest = {
				method: request.method ?? "",
				path,
				query: url.search,
				headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")])),
				bodyLength: body.length,
				bodySha256: createHash("sha256").update(body).digest("hex"),
				answerEnded: null,
			};
			// A gateway that cuts a stream closes the connection before the origin has finished.
			response.once("close", () => (recorded.answerEnded = response.writableFinished ? "finished" : "closed early"));
			list.push(recorded);
			recordings.set(prefixed[1]!, list);
		}

		const delay = Number(url.searchParams.get("delay_ms") ?? 0);
		if (delay > 0) await sleep(delay);

		if (path === "/agent/chat" && request.method === "POST") {
			let content = "";
			try {
				const messages = (JSON.parse(body.toString("utf8")) as { messages?: { content?: unknown }[] }).messages;
				const last = messages?.at(-1)?.content;
				if (typeof last === "string") content = last;
			} catch {
				// A body that is not JSON gets the generic answer; the demo never fails on input.
			}
			const answer = JSON.stringify({
				reply: `Demo answer to: ${content}`,
				citations: [],
				used_context: { month: null },
				tool_trace: [{ tool: "demo_origin", status: "ok" }],
				model: "demo-origin",
				received_bytes: body.length,
			});
			// With its length, as FastAPI sends a JSON answer (not chunked).
			response.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(answer) });
			response.end(answer);
			return;
		}

		if (path === "/agent/stream" && request.method === "GET") {
			const tokens = Number(url.searchParams.get("tokens") ?? 5);
			const interval = Number(url.searchParams.get("interval_ms") ?? 100);
			const stallAfter = url.searchParams.has("stall_after") ? Number(url.searchParams.get("stall_after")) : null;
			response.writeHead(200, { "Content-Type": "application/x-ndjson", "Cache-Control": "no-store" });
			response.write(`${JSON.stringify({ type: "start", model: "demo-origin" })}\n`);
			for (let i = 0; i < tokens; i++) {
				if (stallAfter !== null && i >= stallAfter) {
					await sleep(60_000);
					if (response.destroyed) return;
				}
				await sleep(interval);
				if (response.destroyed) return;
				response.write(`${JSON.stringify({ type: "token", text: `token-${i} ` })}\n`);
			}
			response.end(`${JSON.stringify({ type: "done" })}\n`);
			return;
		}

		response.writeHead(404, { "Content-Type": "application/json" });
		response.end(JSON.stringify({ detail: "Not Found" }));
	});

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
		recorded: (id) => recordings.get(id) ?? [],
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

function sleep(milliseconds: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
