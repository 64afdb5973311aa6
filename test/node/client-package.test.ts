import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { HmacV2Vectors, HmacVector } from "../fixtures/hmac-vectors.ts";

const execute = promisify(execFile);
const { cases } = JSON.parse(readFileSync("test/vectors/hmac-v1.json", "utf8")) as { cases: HmacVector[] };

/** Signs every vector with `signRequest()` imported as a consumer in `cwd` would, in a separate Node process. */
async function signAsConsumer(cwd: string) {
	// No bundler, no TypeScript: the package's own exports resolve the entry.
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
	const { stdout } = await execute(process.execPath, ["--input-type=module", "-e", program, JSON.stringify(cases)], { cwd, maxBuffer: 16 * 1024 * 1024 });
	return JSON.parse(stdout) as { name: string; signature: string; timestamp: string; bodyLength: number }[];
}
const expected = () => cases.map((c) => ({ name: c.name, signature: c.signature, timestamp: c.timestamp, bodyLength: Buffer.byteLength(c.body) }));

const folders: string[] = [];
afterAll(() => {
	for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('the "./client" package entry in plain Node 22', () => {
	it("signRequest() imported as a consumer would reproduces every vector of the independent implementation", async () => {
		expect(await signAsConsumer(process.cwd())).toEqual(expected());
	});

	it("npm pack gives a package with no runtime dependencies, which installs offline and alone", async () => {
		const packed = mkdtempSync(join(tmpdir(), "client-pack-"));
		const consumer = mkdtempSync(join(tmpdir(), "client-consumer-"));
		folders.push(packed, consumer);
		// dist/ was built by the global setup, as prepack builds it.
		const { stdout } = await execute("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", packed], { maxBuffer: 16 * 1024 * 1024 });
		const [{ filename, files }] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
		const tarball = join(packed, filename);
		expect(files.map((file) => file.path)).toEqual(expect.arrayContaining(["dist/client/index.js", "dist/vectors/hmac-v1.json", "dist/vectors/hmac-v2.json"]));
		await execute("tar", ["-xzf", tarball, "-C", packed, "package/package.json"]);
		const manifest = JSON.parse(readFileSync(join(packed, "package/package.json"), "utf8")) as Record<string, unknown>;
		expect(manifest.dependencies).toBeUndefined();
		expect(manifest.peerDependencies).toBeUndefined();
		expect(manifest.optionalDependencies).toBeUndefined();

		// Installed with no registry at all: anything it needed from one would fail here.
		writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
		await execute("npm", ["install", "--offline", "--no-package-lock", "--no-audit", "--no-fund", "--ignore-scripts", resolve(tarball)], { cwd: consumer });
		expect(readdirSync(join(consumer, "node_modules")).filter((name) => !name.startsWith("."))).toEqual(["agent-edge-gateway"]);
		expect(await signAsConsumer(consumer)).toEqual(expected());

		// The vectors docs/protocol.md points client teams at, by the package's stable path.
		const program = `
			import v1 from "agent-edge-gateway/vectors/hmac-v1.json" with { type: "json" };
			import v2 from "agent-edge-gateway/vectors/hmac-v2.json" with { type: "json" };
			console.log(JSON.stringify({ v1, v2 }));
		`;
		const shipped = JSON.parse((await execute(process.execPath, ["--input-type=module", "-e", program], { cwd: consumer, maxBuffer: 16 * 1024 * 1024 })).stdout) as Record<string, unknown>;
		expect(shipped).toEqual({ v1: JSON.parse(readFileSync("test/vectors/hmac-v1.json", "utf8")), v2: JSON.parse(readFileSync("test/vectors/hmac-v2.json", "utf8")) });
		expect(readFileSync(join(consumer, "node_modules/agent-edge-gateway/dist/vectors/hmac-v1.json"), "utf8")).toBe(readFileSync("test/vectors/hmac-v1.json", "utf8"));
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
