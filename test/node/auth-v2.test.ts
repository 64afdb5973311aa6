import { execFile } from "node:child_process";
import { connect } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signedV2Init } from "../fixtures/signed.ts";
import { SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { available } from "./helpers/services.ts";
import { useUpstashStack } from "./helpers/stack.ts";

const run = promisify(execFile);
const TOKEN = "auth-v2-upstash-token";

function tally(statuses: number[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
	return counts;
}

/** A v2 POST signed now with the tests' secret: its headers and exact body. */
async function signedV2(body?: string) {
	const { init } = await signedV2Init({ body }, { clientId: "svc-v2", secret: SECRET });
	return { headers: init.headers, body: init.body as Uint8Array<ArrayBuffer> };
}

describe("scheme v2 through the shipped bundle in workerd", () => {
	let gateway: RunningGateway;
	const MAX_BODY_BYTES = 8 * 1024 * 1024;

	beforeAll(async () => {
		gateway = await startGateway({ ORIGIN_URL: "http://127.0.0.1:9", MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
	});
	afterAll(() => gateway?.close());

	it("refuses a forged request with a large declared body before the body is sent", async () => {
		const declared = 4 * 1024 * 1024;
		const forged = await signedV2Init(
			{ body: new Uint8Array(declared), headers: { "content-type": null } },
			{ clientId: "svc-v2", secret: "not-the-gateway-secret-but-as-long-as-it" },
		);
		const { hostname, port } = new URL(gateway.url);
		const head = [
			"POST /agent/chat HTTP/1.1",
			`Host: ${hostname}:${port}`,
			"Content-Type: application/octet-stream",
			`Content-Length: ${declared}`,
			...Object.entries(forged.init.headers).map(([name, value]) => `${name}: ${value}`),
			"",
			"",
		].join("\r\n");
		// The headers and 1 KiB of the 4 MiB, then nothing more: the answer must come anyway.
		const answer = await new Promise<string>((resolveAnswer, reject) => {
			const socket = connect(Number(port), hostname, () => {
				socket.write(head);
				socket.write(Buffer.alloc(1024));
			});
			let received = "";
			socket.on("data", (chunk) => {
				received += chunk.toString("latin1");
				if (received.includes("\r\n\r\n")) {
					socket.destroy();
					resolveAnswer(received);
				}
			});
			socket.on("error", reject);
			socket.on("close", () => resolveAnswer(received));
		});
		expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
	}, 20_000);

	it("a correctly signed request whose body is not the digested one: 400 digest_mismatch", async () => {
		const signed = await signedV2("x");
		const response = await gateway.fetch("/agent/chat", { method: "POST", headers: signed.headers, body: "y" });
		expect(response.status).toBe(400);
		expect(((await response.json()) as { code: string }).code).toBe("digest_mismatch");
	});

	it("the signing CLI's v2 request is accepted once and refused as a replay after", async () => {
		// The curl command the CLI prints, sent twice as it is.
		const { stdout } = await run(process.execPath, [resolve("scripts/sign.ts"), "--scheme", "v2", "--url", gateway.url, "--client-id", "cli-v2"], {
			env: { ...process.env, HMAC_SECRET: SECRET },
		});
		const headers = Object.fromEntries(
			[...stdout.matchAll(/-H '([^:]+): ([^']*)'/g)].map((match) => [match[1]!, match[2]!]),
		);
		expect(Object.keys(headers).sort()).toEqual(["Content-Digest", "Content-Type", "Signature", "Signature-Input"]);
		const body = /--data-binary '([^']*)'/.exec(stdout)![1]!;
		const statuses = [];
		for (let i = 0; i < 2; i++) {
			const response = await gateway.fetch("/agent/chat", { method: "POST", headers, body });
			await response.arrayBuffer();
			statuses.push(response.status);
		}
		// 502: the origin of this gateway is unreachable, so the accepted request ends there.
		expect(statuses).toEqual([502, 409]);
	});
});

describe.skipIf(!available("redis-server", "redis-server"))("scheme v2 replay across gateways on one Redis", () => {
	const stack = useUpstashStack(TOKEN);

	it("200 concurrent copies of one v2 request over two gateway processes: exactly one accepted, its key named by keyid and nonce", async () => {
		const prefix = `v2race:${crypto.randomUUID()}:`;
		const settings = { REPLAY_TIMEOUT_MS: "5000", REDIS_REPLAY_PREFIX: prefix };
		const [a, b] = await Promise.all([stack.gateway(settings), stack.gateway(settings)]);
		const request = await signedV2();
		const answers = await Promise.all(
			Array.from({ length: 200 }, (_, i) =>
				(i % 2 === 0 ? a! : b!).fetch("/agent/chat", { method: "POST", headers: request.headers, body: request.body }).then(async (r) => {
					await r.arrayBuffer();
					return r.status;
				}),
			),
		);
		expect(tally(answers)).toEqual({ 200: 1, 409: 199 });

		const nonce = /nonce="([^"]+)"/.exec(request.headers["signature-input"]!)![1]!;
		const created = /created=([0-9]+)/.exec(request.headers["signature-input"]!)![1]!;
		const { stdout } = await run("redis-cli", ["-p", String(stack.redis.port), "GET", `${prefix}v2:svc-v2:${nonce}`]);
		expect(stdout).toContain(`svc-v2:${Number(created) * 1000}`);
	});
});
