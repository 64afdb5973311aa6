import net from "node:net";
import { describe, expect, it } from "vitest";
import { signed } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";

/** Writes raw bytes to the gateway and reads what comes back: the status, or null when the connection closed without an answer. */
function rawExchange(port: number, chunks: (string | Buffer)[], closeAfterWrite: boolean): Promise<{ status: number | null; body: string }> {
	return new Promise((resolve) => {
		const socket = net.createConnection({ port, host: "127.0.0.1" });
		let received = "";
		const finish = () => {
			const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
			const body = received.split("\r\n\r\n").slice(1).join("\r\n\r\n");
			resolve({ status: match ? Number(match[1]) : null, body });
		};
		socket.setTimeout(3_000, () => socket.destroy());
		socket.on("data", (data) => {
			received += data.toString("latin1");
			// One answer is all we wait for.
			if (/\r\n\r\n/.test(received)) {
				const length = /content-length: (\d+)/i.exec(received);
				const head = received.indexOf("\r\n\r\n") + 4;
				if (length && received.length >= head + Number(length[1])) socket.destroy();
				if (!length && /transfer-encoding: chunked/i.test(received) && received.endsWith("0\r\n\r\n")) socket.destroy();
			}
		});
		socket.on("close", finish);
		socket.on("error", () => {});
		socket.on("connect", () => {
			for (const chunk of chunks) socket.write(chunk);
			if (closeAfterWrite) socket.end();
		});
	});
}

describe.skipIf(!available("redis-server", "redis-server"))("raw HTTP fuzzing against the gateway in workerd", () => {
	const stack = useUpstashStack("raw-token");
	const recordingId = crypto.randomUUID();
	const started = () =>
		stack.gateway({ ENVIRONMENT: "production", ORIGIN_URL: `${stack.origin.url}/t/${recordingId}`, METRICS_TOKEN: "raw-metrics", MAX_BODY_BYTES: "2048" });

	it("repeated, oversized and control-character headers, odd methods, broken framing: never a 2xx or 5xx, no origin or Upstash call", async () => {
		const gateway = await started();
		const port = Number(new URL(gateway.url).port);
		const { upstash, origin } = stack;
		const sig = "a".repeat(64);
		const now = Date.now();
		const head = (method: string, path: string, headers: string[]) => `${method} ${path} HTTP/1.1\r\nHost: gw\r\n${headers.map((h) => `${h}\r\n`).join("")}`;
		const cases: { name: string; chunks: (string | Buffer)[]; close: boolean }[] = [];
		const add = (name: string, chunks: (string | Buffer)[], close = true) => cases.push({ name, chunks, close });
		// Methods the runtime itself does not recognize (FOO, lowercase get) or CONNECT are answered
		// by workerd (501) or Miniflare's entry (500) before any Worker code runs; on Cloudflare the
		// edge answers them. They are left out: this test is about what the gateway answers.
		for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND", "TRACE"]) {
			add(`method ${method}`, [head(method, "/agent/chat", [`X-Client-Id: c`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 0"]) + "\r\n"]);
		}
		add("repeated client id", [head("POST", "/agent/chat", ["X-Client-Id: a", "X-Client-Id: b", `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("repeated timestamp", [head("POST", "/agent/chat", ["X-Client-Id: a", `X-Timestamp: ${now}`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("repeated signature", [head("POST", "/agent/chat", ["X-Client-Id: a", `X-Timestamp: ${now}`, `X-Signature: ${sig}`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("control characters", [head("POST", "/agent/chat", ["X-Client-Id: a\x01b", `X-Timestamp: ${now}\x7f`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("raw non-ASCII bytes", [Buffer.concat([Buffer.from(head("POST", "/agent/chat", [`X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 2"])), Buffer.from("X-Client-Id: caf\xe9\xff\r\n\r\n{}", "latin1")])]);
		add("oversized header", [head("POST", "/agent/chat", [`X-Client-Id: ${"x".repeat(60_000)}`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("encoded path", [head("POST", "/agent/%2e%2e/%2e%2e/healthz%00", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 2"]) + "\r\n{}"]);
		add("body over the limit by Content-Length", [head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 999999"]) + "\r\n" + "x".repeat(3000)]);
		add("chunked body over the limit", [head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Transfer-Encoding: chunked"]) + "\r\n" + `800\r\n${"y".repeat(2048)}\r\n800\r\n${"y".repeat(2048)}\r\n0\r\n\r\n`]);
		add("broken chunked framing", [head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Transfer-Encoding: chunked"]) + "\r\nzz\r\nhello\r\n0\r\n\r\n"]);
		add("body truncated mid-stream", [head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 500"]) + '\r\n{"messages":[{"ro']);
		add("chunked body truncated", [head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Transfer-Encoding: chunked"]) + "\r\n10\r\n0123456789"]);
		add("invalid UTF-8 body", [Buffer.concat([Buffer.from(head("POST", "/agent/chat", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 6"]) + "\r\n"), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1])])]);
		add("GET with a body", [head("GET", "/agent/stream", [`X-Client-Id: a`, `X-Timestamp: ${now}`, `X-Signature: ${sig}`, "Content-Length: 5"]) + "\r\nhello"]);
		add("test mode in production", [head("POST", "/agent/chat", ["X-Test-Mode: stub", "Content-Length: 2"]) + "\r\n{}"]);
		add("garbage request line", ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"]);
		// Many more of the generated kind, with random bytes in the header values.
		for (let i = 0; i < 200; i++) {
			const junk = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, j) => 0x20 + ((i * 31 + j * 17) % 0x5f)));
			add(`generated ${i}`, [Buffer.concat([Buffer.from(head("POST", i % 2 ? "/agent/chat" : "/api/agent/chat", [`X-Timestamp: ${now - i}`, `X-Signature: ${sig.slice(i % 64)}`])), Buffer.from("X-Client-Id: "), junk, Buffer.from("\r\nContent-Length: 2\r\n\r\n{}")])]);
		}

		upstash.resetStats();
		const outcomes: string[] = [];
		const statuses: Record<string, number> = {};
		for (const { name, chunks, close } of cases) {
			const { status, body } = await rawExchange(port, chunks, close);
			statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
			if (status !== null && (status < 400 || status >= 500)) outcomes.push(`${name}: ${status} ${body.slice(0, 100)}`);
			if (status !== null && status < 500 && body.startsWith("{")) {
				const parsed = JSON.parse(body.includes("\r\n") ? body.split("\r\n")[1]! : body) as Record<string, unknown>;
				if (typeof parsed.detail !== "string" || typeof parsed.code !== "string") outcomes.push(`${name}: not the error shape`);
			}
		}
		expect(outcomes).toEqual([]);
		// Only a truncated body leaves nothing to answer (the connection closed first).
		expect(statuses.null ?? 0).toBeLessThanOrEqual(2);
		expect(Object.keys(statuses).sort()).toEqual(expect.arrayContaining(["400", "401", "403", "405", "413"]));
		expect(origin.recorded(recordingId)).toHaveLength(0);
		expect(upstash.stats.requests).toBe(0);

		// And the gateway still serves a valid request.
		const request = await signed();
		expect((await gateway.fetch(request.path, request.init)).status).toBe(200);
		expect(origin.recorded(recordingId)).toHaveLength(1);
	});
});
