import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { HmacV2Vectors, HmacVector } from "../fixtures/hmac-vectors.ts";

const execute = promisify(execFile);


describe('the "./client" package entry in plain Node 22', () => {
	it("signRequest() imported as a consumer would reproduces every vector of the independent implementation", async () => {
		const { cases } = JSON.parse(readFileSync("../shared/vectors/hmac-v1.json", "utf8")) as { cases: HmacVector[] };
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

	it("signs scheme v2 as the independent implementation did, from one self-contained file", async () => {
		const { cases } = JSON.parse(readFileSync("test/vectors/hmac-v2.json", "utf8")) as HmacV2Vectors;
		const vector = cases.find((c) => c.name === "get-stream-with-query")!;
		const program = `
			import { signRequest } from "agent-edge-gateway/client";
			const { headers } = await signRequest({ scheme: "v2", clientId: "web-app", secret: process.argv[1], method: "GET",
				path: "/agent/stream", query: "?prompt=hello%20world&month=2026-11", created: 1764158401, nonce: "Zm9vYmFyYmF6cXV4MTIzNA" });
			const fresh = await signRequest({ scheme: "v2", clientId: "web-app", secret: process.argv[1], method: "POST", path: "/agent/chat", body: "{}" });
			console.log(JSON.stringify({ headers, fresh: fresh.headers }));
		`;
		const { stdout } = await execute(process.execPath, ["--input-type=module", "-e", program, vector.secret]);
		const { headers, fresh } = JSON.parse(stdout) as { headers: Record<string, string>; fresh: Record<string, string> };
		expect(headers).toEqual({ "Signature-Input": vector.headers["signature-input"], Signature: vector.headers.signature });
		// Unpinned: created is now and the nonce is fresh; a POST carries its Content-Digest.
		expect(fresh["Signature-Input"]).toMatch(
			/^sig1=\("@method" "@path" "@query" "content-digest"\);created=[0-9]{10};keyid="web-app";nonce="[A-Za-z0-9_-]{22}"$/,
		);
		expect(fresh["Content-Digest"]).toBe("sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:");

		// The package has no runtime dependency: its one module imports nothing.
		const bundle = readFileSync("dist/client/index.js", "utf8");
		expect(bundle).not.toMatch(/\bimport\s*[{("'*]|\bfrom\s*["']|\brequire\(/);
		expect(bundle).toContain("signRequest");
	});
});
