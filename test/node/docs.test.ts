import { createHmac } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { parseDotenv } from "../../scripts/lib/dev-vars.ts";
import { canonicalString, sha256Hex, signRequest } from "../../src/client/index.ts";
import { ERRORS, type ErrorCode } from "../../src/errors.ts";
import { gatewayRegistry } from "../../src/metrics/families.ts";
import { GatewayMetrics } from "../../src/metrics/gateway-metrics.ts";
import type { HmacV2Vectors, HmacVector } from "../fixtures/hmac-vectors.ts";
import { settingNames } from "../fixtures/worker-bindings.ts";
import { runCli } from "./helpers/cli.ts";
import { startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { workedExamples, type WireRequest, type WorkedExample } from "./helpers/protocol-page.ts";

const DOCS = ["README.md", "BENCHMARKS.md", ...readdirSync("docs").filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)].filter((file) => existsSync(file));
const SCRIPTS = new Set(Object.keys((JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts));
const SHELL = new Set(["", "sh", "bash", "shell", "console"]);

export interface Block {
	file: string;
	line: number;
	lang: string;
	text: string;
	/** The fence's indentation (a block inside a list item): every line of `text` carries it. */
	indent?: number;
}

/** Every fenced code block (``` or ~~~, possibly indented in a list) of a Markdown file. */
export function codeBlocks(file: string, markdown: string): Block[] {
	const blocks: Block[] = [];
	const lines = markdown.split("\n");
	for (let i = 0; i < lines.length; i++) {
		const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
		if (open === null) continue;
		const body: string[] = [];
		let j = i + 1;
		while (j < lines.length && !lines[j]!.trimStart().startsWith(open[2]!)) body.push(lines[j++]!);
		blocks.push({ file, line: i + 1, lang: open[3]!, text: body.join("\n"), indent: open[1]!.length });
		i = j;
	}
	return blocks;
}

/** The commands of a shell line, without its comment: `a && b | c; d` gives a, b, c, d. */
function commands(line: string): string[] {
	const code = line.replace(/(^|\s)#.*$/, "");
	return code.split(/&&|\|\||[;|]/).map((part) => part.trim().replace(/^\$\s+/, "").replace(/^(\w+=\S*\s+)+/, "")).filter((part) => part !== "");
}

/** Problems of one block: `npm run X` where X is no script, a bare `wrangler` (not on a user's PATH). */
export function problems(block: Block): string[] {
	const found: string[] = [];
	const where = `${block.file}:${block.line}`;
	for (const [, name] of block.text.matchAll(/\bnpm run ([\w:.-]+)/g)) {
		if (!SCRIPTS.has(name!)) found.push(`${where}: npm run ${name} is not a script of package.json`);
	}
	if (SHELL.has(block.lang)) {
		for (const line of block.text.split("\n")) {
			for (const command of commands(line)) {
				if (/^wrangler(\s|$)/.test(command)) found.push(`${where}: bare "wrangler" (write npx wrangler): ${command}`);
				const npx = /^npx\s+(?:--\S+\s+)*([\w@./-]+)/.exec(command);
				if (npx !== null && !existsSync(`node_modules/.bin/${npx[1]}`)) found.push(`${where}: npx ${npx[1]} is not installed by npm ci`);
			}
		}
	}
	return found;
}

describe("the commands in the docs", () => {
	const blocks = DOCS.flatMap((file) => codeBlocks(file, readFileSync(file, "utf8")));

	it("reads the fenced blocks of every doc", () => {
		expect(DOCS).toEqual(expect.arrayContaining(["README.md", "docs/deploy.md", "docs/protocol.md"]));
		expect(blocks.filter((block) => /\bnpm run /.test(block.text)).length).toBeGreaterThanOrEqual(5);
	});

	it("name only real npm scripts, and run wrangler through npx", () => {
		expect(blocks.flatMap(problems)).toEqual([]);
	});

	it("the checks catch what they are for", () => {
		const block = (text: string, lang = "sh"): Block => ({ file: "x.md", line: 1, lang, text });
		expect(problems(block("npm run no-such-script -- --x"))).toEqual(["x.md:1: npm run no-such-script is not a script of package.json"]);
		expect(problems(block("cd x && wrangler secret put A --env production   # comment"))).toEqual([
			'x.md:1: bare "wrangler" (write npx wrangler): wrangler secret put A --env production',
		]);
		expect(problems(block("TS=1 wrangler tail"))).toHaveLength(1);
		expect(problems(block("npx wrangler tail; npm run sign -- --send # wrangler in a comment"))).toEqual([]);
		expect(problems(block("npx no-such-tool"))).toHaveLength(1);
		expect(codeBlocks("x.md", "text\n   ```sh\n   npm run dev\n   ```\n").map((b) => b.text)).toEqual(["   npm run dev"]);
	});
});

describe("the error tables are the catalogue: docs/protocol.md's section 8 for clients, docs/origin.md's for the usage route", () => {
	const rowsOf = (text: string) =>
		[...text.matchAll(/^\| (\d{3}) \| ([^|]+) \|/gm)].flatMap(([, status, codes]) => [...codes!.matchAll(/`([a-z_]+)`/g)].map((code) => [code[1]!, Number(status)] as const));
	const protocol = rowsOf(readFileSync("docs/protocol.md", "utf8").split("## 8. Errors, and how to retry")[1]!.split("\n## ")[0]!);
	const origin = rowsOf(readFileSync("docs/origin.md", "utf8"));

	it("every code in either table has the status the gateway answers it with", () => {
		expect(protocol.length).toBeGreaterThanOrEqual(20);
		expect(origin.length).toBeGreaterThanOrEqual(7);
		expect([...protocol, ...origin].filter(([code, status]) => ERRORS[code as ErrorCode]?.status !== status)).toEqual([]);
	});

	it("every code a caller can get is in one of them (the gateway's own 500 aside)", () => {
		const listed = new Set([...protocol, ...origin].map(([code]) => code));
		expect(Object.keys(ERRORS).filter((code) => !listed.has(code) && code !== "internal_error")).toEqual([]);
	});
});

describe("the repository standing alone", () => {
	it("no file but .ci/run names the contract's folder beside the clone", () => {
		const needle = "../" + "shared";
		const skip = new Set(["node_modules", ".git", ".build", ".wrangler", "dist", ".tmp"]);
		const naming: string[] = [];
		const walk = (directory: string) => {
			for (const name of readdirSync(directory)) {
				if (skip.has(name) || name.endsWith(".tgz")) continue;
				const path = directory === "." ? name : join(directory, name);
				if (statSync(path).isDirectory()) walk(path);
				else if (path !== ".ci/run" && readFileSync(path, "utf8").includes(needle)) naming.push(path);
			}
		};
		walk(".");
		expect(naming).toEqual([]);
		expect(readFileSync(".ci/run", "utf8")).toContain(needle);
	});

	it("the code cites the design by a heading docs/design.md has, never a contract section", () => {
		const headings = new Set([...readFileSync("docs/design.md", "utf8").matchAll(/^## (.+)$/gm)].map((match) => match[1]!));
		const cited: string[] = [];
		const stale: string[] = [];
		const contractSection = new RegExp(["SPEC", "section"].join(" "));
		const walk = (directory: string) => {
			for (const name of readdirSync(directory)) {
				const path = join(directory, name);
				if (statSync(path).isDirectory()) walk(path);
				else if (path.endsWith(".ts")) {
					const text = readFileSync(path, "utf8");
					for (const match of text.matchAll(/design\.md, "([^"]+)"/g)) cited.push(`${path}: ${match[1]}`);
					if (contractSection.test(text)) stale.push(path);
				}
			}
		};
		for (const directory of ["src", "scripts", "test"]) walk(directory);
		expect(cited.length).toBeGreaterThanOrEqual(20);
		expect(cited.filter((citation) => !headings.has(citation.slice(citation.indexOf(": ") + 2)))).toEqual([]);
		expect(stale).toEqual([]);
	});

	it("the metrics take their label values from src/events.ts, as docs/design.md says: they import no other part of the gateway", () => {
		const shared = new Set(["../events.ts", "../log.ts", "../env.ts"]);
		const foreign: string[] = [];
		for (const name of readdirSync("src/metrics").filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts"))) {
			for (const match of readFileSync(join("src/metrics", name), "utf8").matchAll(/from "(\.\.\/[^"]+)"/g)) {
				if (!shared.has(match[1]!)) foreign.push(`${name}: ${match[1]}`);
			}
		}
		expect(foreign).toEqual([]);
	});
});

describe("docs/protocol.md: the worked examples are what the code signs and the gateway accepts", () => {
	const page = readFileSync("docs/protocol.md", "utf8");
	const examples = workedExamples(page);
	const v1Cases = (JSON.parse(readFileSync("test/vectors/hmac-v1.json", "utf8")) as { cases: HmacVector[] }).cases;
	const v2Cases = (JSON.parse(readFileSync("test/vectors/hmac-v2.json", "utf8")) as HmacV2Vectors).cases;
	const utf8 = (text = "") => new TextEncoder().encode(text);
	const header = (example: WorkedExample, name: string) => example.request.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
	const input = (example: WorkedExample, name: string) => {
		const value = example.inputs.get(name);
		if (value === undefined) throw new Error(`"${example.title}" has no input "${name}"`);
		return value;
	};

	it("section 7 describes every field of a v2 vector's inputs, and every case's fields", () => {
		const section7 = page.slice(page.indexOf("## 7. Test vectors"), page.indexOf("## 8. "));
		const inputFields = new Set(v2Cases.flatMap((vector) => Object.keys(vector.inputs)));
		expect(inputFields.size).toBeGreaterThanOrEqual(7);
		expect([...inputFields].filter((field) => !section7.includes(`| \`${field}\` |`))).toEqual([]);
		const caseFields = new Set(v2Cases.flatMap((vector) => Object.keys(vector)));
		expect([...caseFields].filter((field) => !section7.includes(`\`${field}\``))).toEqual([]);
	});

	it("has a POST in v1, and in v2 a GET with a query and a POST", () => {
		expect(examples.map((example) => `${example.scheme} ${example.request.method} ${example.request.target}`)).toEqual([
			"v1 POST /agent/chat",
			"v2 GET /agent/stream?prompt=hello%20world&month=2026-11",
			"v2 POST /agent/chat",
		]);
	});

	it.each(examples.map((example) => [example.title, example] as const))("%s: the values on the page are the independent vector's", (_title, example) => {
		if (example.scheme === "v1") {
			const vector = v1Cases.find((c) => c.name === example.vectorCase)!;
			expect(vector).toBeDefined();
			expect([input(example, "secret"), input(example, "method"), input(example, "path"), input(example, "timestamp"), input(example, "body")]).toEqual([
				vector.secret, vector.method, vector.path, vector.timestamp, vector.body,
			]);
			expect(example.signed).toBe(vector.canonical);
			expect(example.hex).toEqual([vector.body_sha256, vector.signature]);
			expect(page).toContain(`\`${vector.body}\` (${Buffer.byteLength(vector.body)} bytes)`);
			expect([header(example, "X-Timestamp"), header(example, "X-Signature")]).toEqual([vector.timestamp, vector.signature]);
		} else {
			const vector = v2Cases.find((c) => c.name === example.vectorCase)!;
			expect(vector).toBeDefined();
			expect(input(example, "secret")).toBe(vector.secret);
			expect(example.request.method + " " + example.request.target).toBe(`${vector.method} ${vector.target}`);
			expect(example.request.body).toBe(vector.body);
			expect(example.signed).toBe(vector.signature_base);
			expect(example.hex).toEqual([vector.signature_hex]);
			for (const name of ["signature-input", "signature", "content-digest"]) expect(header(example, name)).toBe(vector.headers[name]);
		}
	});

	it.each(examples.map((example) => [example.title, example] as const))("%s: the project's signer, from the page's inputs, gives the page's request", async (_title, example) => {
		const common = { clientId: input(example, "client id"), secret: input(example, "secret"), method: input(example, "method"), path: input(example, "path"), body: example.inputs.get("body") };
		const signed =
			example.scheme === "v1"
				? (await signRequest({ ...common, timestamp: Number(input(example, "timestamp")) })).headers
				: (await signRequest({ ...common, scheme: "v2", query: example.inputs.get("query"), created: Number(input(example, "created")), nonce: input(example, "nonce") })).headers;
		const expected = Object.fromEntries(Object.keys(signed).map((name) => [name, header(example, name)]));
		expect(signed).toEqual(expected);
		expect(example.request.target).toBe(input(example, "path") + (example.inputs.get("query") ?? ""));
		// The intermediate values: the canonical string from the signer's own function; the HMAC
		// of the page's text (Node's crypto, not the signer's) is the page's signature.
		const mac = createHmac("sha256", input(example, "secret")).update(example.signed).digest();
		const [hex, base64] = [mac.toString("hex"), mac.toString("base64")];
		if (example.scheme === "v1") {
			expect(example.signed).toBe(canonicalString({ method: common.method, path: common.path, timestamp: input(example, "timestamp"), bodySha256: await sha256Hex(utf8(common.body)) }));
			expect(example.hex).toEqual([await sha256Hex(utf8(common.body)), hex]);
		} else {
			expect(example.hex).toEqual([hex]);
			expect(example.base64.at(-1)).toBe(base64);
			expect(header(example, "Signature")).toBe(`sig1=:${base64}:`);
			// The base's last line is the Signature-Input member as sent.
			expect(example.signed.split("\n").at(-1)).toBe(`"@signature-params": ${header(example, "Signature-Input")!.slice("sig1=".length)}`);
		}
	});

	it.each(examples.map((example) => [example.title, example] as const))("%s: its `npm run sign` line prints the same headers", async (_title, example) => {
		const { code, stdout } = await runCli("sign", example.signer.args, { env: { ...example.signer.env, GATEWAY_URL: "http://gateway.example.com" } });
		expect(code).toBe(0);
		expect(stdout).toContain(`-X ${example.request.method} 'http://gateway.example.com${example.request.target}'`);
		for (const [name, value] of example.request.headers) if (name !== "Host") expect(stdout).toContain(`-H '${name}: ${value}'`);
	});

	describe("sent as written to a running gateway (the bundle in workerd)", () => {
		let origin: DemoOrigin;
		const gateways: RunningGateway[] = [];
		beforeAll(async () => {
			origin = await startDemoOrigin();
		});
		afterAll(async () => {
			await Promise.all(gateways.map((gateway) => gateway.close()));
			await origin?.close();
		});
		/** A gateway with this secret, whose window admits the page's fixed times. */
		const gatewayWith = async (bindings: Record<string, string>) => {
			const gateway = await startGateway({ ORIGIN_URL: origin.url, HMAC_MAX_SKEW_MS: String(100 * 365 * 86_400_000), ...bindings });
			gateways.push(gateway);
			return gateway;
		};
		const send = (gateway: RunningGateway, request: WireRequest) =>
			gateway.fetch(request.target, { method: request.method, headers: request.headers.filter(([name]) => name !== "Host"), body: request.method === "POST" ? request.body : undefined });

		it.each(examples.map((example) => [example.title, example] as const))("%s: accepted, answered by the backend", async (_title, example) => {
			const gateway = await gatewayWith({ HMAC_SECRET: input(example, "secret") });
			const response = await send(gateway, example.request);
			expect(response.status).toBe(200);
			expect(response.headers.get("x-auth-mode")).toBe("hmac");
			await response.arrayBuffer();
			// Sent again: the gateway's own answer, with a code and no X-Auth-Mode.
			const again = await send(gateway, example.request);
			expect(again.status).toBe(409);
			expect(again.headers.get("x-auth-mode")).toBeNull();
			expect(((await again.json()) as { code: string }).code).toBe("replay");
		});

		it("what the page says of errors: the gateway's carry a code and no X-Auth-Mode, the backend's no code and X-Auth-Mode", async () => {
			const gateway = await gatewayWith({ HMAC_SECRET: "page-secret" });
			const own = await gateway.fetch("/nowhere");
			expect([own.status, own.headers.get("x-auth-mode"), own.headers.get("content-type")]).toEqual([404, null, "application/json"]);
			expect(await own.json()).toEqual({ detail: expect.any(String), code: "not_found" });
			// A signed GET /agent/chat passes the gateway; the backend has no such route.
			const { headers } = await signRequest({ clientId: "web-app", secret: "page-secret", method: "GET", path: "/agent/chat" });
			const backend = await gateway.fetch("/agent/chat", { headers: { ...headers } });
			expect([backend.status, backend.headers.get("x-auth-mode")]).toEqual([404, "hmac"]);
			expect(await backend.json()).not.toHaveProperty("code");
		});

		it("the page's .dev.vars lines, read as wrangler reads them, give the gateway the secrets the page says", async () => {
			const section = page.split("### `.dev.vars`")[1]!.split("### ")[0]!;
			const block = codeBlocks("docs/protocol.md", section).find((candidate) => candidate.text.includes("HMAC_CLIENTS="))!;
			const settings = parseDotenv(block.text);
			const clients = JSON.parse(settings.get("HMAC_CLIENTS")!) as Record<string, string | string[]>;
			expect(Object.keys(clients)).toEqual(["web-app", "mobile-app"]);
			const gateway = await gatewayWith(Object.fromEntries(settings));
			const status = async (clientId: string, secret: string) => {
				const { headers } = await signRequest({ scheme: "v2", clientId, secret, method: "GET", path: "/agent/stream", query: "?tokens=1&interval_ms=1" });
				const response = await gateway.fetch("/agent/stream?tokens=1&interval_ms=1", { headers: headers as Record<string, string> });
				await response.arrayBuffer();
				return response.status;
			};
			expect(await status("web-app", clients["web-app"] as string)).toBe(200);
			// A list is a rotation: the older secret still verifies; a listed client never takes the shared one.
			expect(await status("mobile-app", (clients["mobile-app"] as string[])[1]!)).toBe(200);
			expect(await status("mobile-app", settings.get("HMAC_SECRET")!)).toBe(403);
			expect(await status("anyone-else", settings.get("HMAC_SECRET")!)).toBe(200);
		});

		it("v1 with a shared secret: a request relabelled to another client id passes; with a secret per client, it is refused", async () => {
			const relabelled = async (bindings: Record<string, string>) => {
				const gateway = await gatewayWith(bindings);
				const { headers, body } = await signRequest({ clientId: "web-app", secret: "web-app-secret", method: "POST", path: "/agent/chat", body: "{}" });
				const response = await gateway.fetch("/agent/chat", { method: "POST", headers: { ...headers, "X-Client-Id": "other-app" }, body });
				await response.arrayBuffer();
				return response.status;
			};
			expect(await relabelled({ HMAC_SECRET: "web-app-secret" })).toBe(200);
			expect(await relabelled({ HMAC_CLIENTS: JSON.stringify({ "web-app": "web-app-secret", "other-app": "other-app-secret" }) })).toBe(403);
		});

		it("v2: a GET covering content-digest without sending it, a decimal created, a path with %: refused, 400", async () => {
			const gateway = await gatewayWith({ HMAC_SECRET: "page-secret" });
			const created = Math.floor(Date.now() / 1000);
			const get = async (nonce: string, change: (input: string) => string, path = "/agent/stream") => {
				const { headers } = await signRequest({ scheme: "v2", clientId: "web-app", secret: "page-secret", method: "GET", path, created, nonce });
				const response = await gateway.fetch(path, { headers: { ...headers, "Signature-Input": change(headers["Signature-Input"]) } });
				return [response.status, ((await response.json()) as { code: string }).code];
			};
			expect(await get("nonce-digest-on-get-1", (value) => value.replace('"@query")', '"@query" "content-digest")'))).toEqual([400, "invalid_signature_input"]);
			expect(await get("nonce-decimal-created", (value) => value.replace(`created=${created}`, `created=${created}.5`))).toEqual([400, "invalid_signature_input"]);
			expect(await get("nonce-percent-in-path", (value) => value, "/agent/caf%C3%A9")).toEqual([400, "invalid_path"]);
		});
	});
});

describe("the streamed answer and the demo backend, as the docs give them", () => {
	const page = readFileSync("docs/protocol.md", "utf8");
	const section = (title: string) => page.split(`### ${title}\n`)[1]!.split("\n### ")[0]!.split("\n## ")[0]!;
	let origin: DemoOrigin;
	beforeAll(async () => {
		origin = await startDemoOrigin();
	});
	afterAll(async () => {
		await origin?.close();
	});

	it("docs/protocol.md's lines are the demo backend's, byte for byte, for two tokens", async () => {
		const shown = codeBlocks("docs/protocol.md", section("The streamed answer")).find((block) => block.lang === "ndjson");
		expect(shown, "an ndjson block under \"The streamed answer\"").toBeDefined();
		const response = await fetch(`${origin.url}/agent/stream?tokens=2&interval_ms=0`);
		expect(response.headers.get("content-type")).toBe("application/x-ndjson");
		expect(await response.text()).toBe(`${shown!.text}\n`);
	});

	it("every query parameter the demo backend reads is in docs/protocol.md's table and its --help, and README names tokens and interval_ms", async () => {
		const read = [...readFileSync("scripts/lib/demo-origin.ts", "utf8").matchAll(/searchParams\.(?:get|has)\("([a-z_]+)"\)/g)].map((match) => match[1]!);
		expect(new Set(read)).toEqual(new Set(["delay_ms", "tokens", "interval_ms", "stall_after", "spend", "report", "ignore_hold"]));
		const table = section("The demo backend");
		expect(read.filter((name) => !table.includes(`| \`${name}\` |`))).toEqual([]);
		const help = (await runCli("demo-origin", ["--help"])).stdout;
		expect(read.filter((name) => !help.includes(`${name}=`))).toEqual([]);
		const readme = readFileSync("README.md", "utf8");
		for (const name of ["tokens", "interval_ms"]) expect(readme).toContain(`\`${name}\``);
	});
});

describe("README's settings table", () => {
	it("has a row for every setting the Worker reads (src/env.ts), and no row for one it does not", () => {
		const settings = settingNames(readFileSync("src/env.ts", "utf8"));
		expect(settings).toContain("ORIGIN_FORWARD_HEADERS");
		const rows = [...readFileSync("README.md", "utf8").matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| [^|]+ \| (?:yes|no) \|/gm)].map((match) => match[1]!);
		expect(rows.sort()).toEqual(settings.sort());
	});
});

describe("README's metrics table", () => {
	const rows = new Map(
		[...readFileSync("README.md", "utf8").matchAll(/^\| `(agent_[a-z_]+)` \| (counter|gauge|histogram) \|(.*)\|$/gm)].map((match) => [match[1]!, { type: match[2]!, labels: match[3]!.trim() }]),
	);

	it("has a row for every family of the registry, in its order, with its type and its label names", () => {
		expect([...rows.keys()]).toEqual(gatewayRegistry.definitions.map((definition) => definition.name));
		for (const definition of gatewayRegistry.definitions) {
			expect(rows.get(definition.name)!.type, definition.name).toBe(definition.type);
			for (const label of definition.labelNames) expect(rows.get(definition.name)!.labels, definition.name).toContain(`\`${label}\``);
		}
	});

	it("names every label value the gateway can count (all but a client id, a slot number, and a mode that is an error code)", () => {
		// Every series is primed at 0: the primed ones are every value the code can count.
		const primed = new GatewayMetrics().primed;
		const unlisted: string[] = [];
		for (const definition of gatewayRegistry.definitions) {
			for (const key of Object.keys(primed[definition.name] ?? {})) {
				const values = JSON.parse(key) as string[];
				definition.labelNames.forEach((label, index) => {
					const value = values[index]!;
					if (label === "client" || label === "slot" || (label === "mode" && value in ERRORS)) return;
					if (!rows.get(definition.name)!.labels.includes(`\`${value}\``)) unlisted.push(`${definition.name}{${label}="${value}"}`);
				});
			}
		}
		expect(Object.keys(primed).length).toBeGreaterThan(10);
		expect([...new Set(unlisted)]).toEqual([]);
	});
});
