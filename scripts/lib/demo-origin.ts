import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { budgetOf, REPORTS, spend, USAGE_HEADER, UsageReporter, type Report, type Settlement } from "./demo-budget.ts";

export type { Settlement } from "./demo-budget.ts";

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
	/** Every report sent to a gateway's usage route, in order, with its answer. */
	settlements(): readonly Settlement[];
	/** Where reports go (`POST <url>/gateway/usage`); null: nowhere (recorded as "no gateway"). */
	setGateway(url: string | null): void;
	/** Waits for the reports still on their way. */
	settled(): Promise<void>;
	close(): Promise<void>;
}

export interface DemoOriginOptions {
	port?: number;
	host?: string;
	/** The gateway whose `POST /gateway/usage` takes this origin's reports (docs/design.md, "Token budgets"). */
	gatewayUrl?: string;
	/** The bearer token of those reports; unset, the `X-Gateway-Token` the gateway sent with the request. */
	originToken?: string;
}

/**
 * A stand-in for the FastAPI agent backend: `POST /agent/chat` answers JSON in its shape,
 * `GET /agent/stream` sends NDJSON events (`start`, `token`..., `done`) over time.
 * Query knobs for tests: `delay_ms` (before the headers), `tokens`, `interval_ms`,
 * `stall_after` (stop sending after that many tokens, without ending).
 *
 * A budgeted request (the gateway sent `X-Token-Hold`) spends one token per word of the chat
 * reply or per streamed `token` event, and stops at the hold. With `X-Token-Reservation`, it
 * reports what it spent: `X-Token-Usage` on a chat answer, `POST /gateway/usage` after a stream
 * (also after a stream the client left). Knobs: `spend` (what the chat loop would spend),
 * `report` (`header`, `route`, `both`, `none`), `ignore_hold=1` (an origin that overruns).
 */
export async function startDemoOrigin(options: DemoOriginOptions = {}): Promise<DemoOrigin> {
	const recordings = new Map<string, RecordedRequest[]>();
	const reporter = new UsageReporter(options);

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
			const budget = budgetOf(request.headers);
			const words = `Demo answer to: ${content}`.split(" ");
			const knob = Number(url.searchParams.get("spend") ?? Number.NaN);
			const wanted = Number.isSafeInteger(knob) && knob >= 0 ? knob : words.length;
			const spent = spend(wanted, budget, url.searchParams.get("ignore_hold") === "1");
			const report = reportOf(url, "header");
			const answer = JSON.stringify({
				reply: words.slice(0, Math.min(words.length, spent)).join(" "),
				citations: [],
				used_context: { month: null },
				tool_trace: [{ tool: "demo_origin", status: "ok" }],
				model: "demo-origin",
				received_bytes: body.length,
			});
			// With its length, as FastAPI sends a JSON answer (not chunked).
			const headers: Record<string, string | number> = { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(answer) };
			if (budget.reservation !== null && (report === "header" || report === "both")) headers[USAGE_HEADER] = String(spent);
			response.writeHead(200, headers);
			response.end(answer);
			if (report === "route" || report === "both") response.once("close", () => reporter.settle(budget, spent));
			return;
		}

		if (path === "/agent/stream" && request.method === "GET") {
			const budget = budgetOf(request.headers);
			const tokens = spend(Number(url.searchParams.get("tokens") ?? 5), budget, url.searchParams.get("ignore_hold") === "1");
			const interval = Number(url.searchParams.get("interval_ms") ?? 100);
			const stallAfter = url.searchParams.has("stall_after") ? Number(url.searchParams.get("stall_after")) : null;
			const report = reportOf(url, "route");
			// What was spent is reported once the stream is over, however it ended (the client may leave).
			let sent = 0;
			if (report === "route" || report === "both") response.once("close", () => reporter.settle(budget, sent));
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
				sent++;
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
		settlements: () => reporter.settlements,
		setGateway: (url) => void (reporter.gatewayUrl = url?.replace(/\/+$/, "") ?? null),
		settled: () => reporter.idle(),
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
			await reporter.idle();
		},
	};
}

/** The `report` knob, or how this route reports by default. */
function reportOf(url: URL, fallback: Report): Report {
	const value = url.searchParams.get("report");
	return (REPORTS as readonly string[]).includes(value ?? "") ? (value as Report) : fallback;
}

function sleep(milliseconds: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
