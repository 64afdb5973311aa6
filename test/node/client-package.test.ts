import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { HmacVector } from "../fixtures/hmac-vectors.ts";

const execute = promisify(execFile);


describe('the "./client" package entry in plain Node 22', () => {
	it("signRequest() imported as a consumer would reproduces every vector of the independent implementation", async () => {
		const { cases } = JSON.parse(readFileSync("test/vectors/hmac-v1.json", "utf8")) as { cases: HmacVector[] };
		// A separate Node process resolving the package's own exports, no bundler, no TypeScript.
		const program = `
			import { signRequest } from "agent-edge-gateway/client";
			const cases = JSON.parse(process.argv[1]);
			const out = [];
			for (const c of cases) {
				const { headers, body } = await signRequest({ clientId: "pkg", secret: c.secret, method: c.method, path: c.path, body: c.body, timestamp: Number(c.timestamp) });
				out.push({ name: c.name, signature: headers["X-Signature"], timestamp: headers["X-Timestamp"], bodyLength: body.byteLength });
			}
			console.log(JSON.stringify(out));
		`;
		const { stdout } = await execute(process.execPath, ["--input-type=module", "-e", program, JSON.stringify(cases)], { maxBuffer: 16 * 1024 * 1024 });
		const signed = JSON.parse(stdout) as { name: string; signature: string; timestamp: string; bodyLength: number }[];
		expect(signed).toEqual(
			cases.map((c) => ({ name: c.name, signature: c.signature, timestamp: c.timestamp, bodyLength: Buffer.byteLength(c.body) })),
		);
	});
});
