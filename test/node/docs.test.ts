import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { HmacVector } from "../fixtures/hmac-vectors.ts";
import { describe, expect, it } from "vitest";

const DOCS = ["README.md", "BENCHMARKS.md", ...readdirSync("docs").filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)].filter((file) => existsSync(file));
const SCRIPTS = new Set(Object.keys((JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> }).scripts));
const SHELL = new Set(["", "sh", "bash", "shell", "console"]);

interface Block {
	file: string;
	line: number;
	lang: string;
	text: string;
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
		blocks.push({ file, line: i + 1, lang: open[3]!, text: body.join("\n") });
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

describe("docs/protocol.md and the repository standing alone", () => {
	it("the worked example is the vector it says it is", () => {
		const text = readFileSync("docs/protocol.md", "utf8");
		const { cases } = JSON.parse(readFileSync("test/vectors/hmac-v1.json", "utf8")) as { cases: HmacVector[] };
		const vector = cases.find((c) => c.name === "post-json")!;
		expect(text).toContain(`case \`${vector.name}\``);
		expect(text).toContain(`with the secret \`${vector.secret}\``);
		expect(text).toContain(`\`${vector.body}\``);
		expect(text).toContain(`| \`X-Timestamp\` | \`${vector.timestamp}\` |`);
		expect(text).toContain(`| SHA-256 of the body | \`${vector.body_sha256}\` |`);
		expect(text).toContain(`\`${vector.canonical.replaceAll("\n", "\\n")}\``);
		expect(text).toContain(`| \`X-Signature\` | \`${vector.signature}\` |`);
		expect(text).toContain(`(${Buffer.byteLength(vector.body)} bytes)`);
	});

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
});
