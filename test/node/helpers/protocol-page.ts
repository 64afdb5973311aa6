// Reads the worked examples of docs/protocol.md as a client team reads them: the inputs
// table, the intermediate values, the request on the wire and the signer's command line.

/** One "### Worked example: ..." section of the page. */
export interface WorkedExample {
	title: string;
	scheme: "v1" | "v2";
	/** The vector case the page says it is (`The case \`name\``). */
	vectorCase: string;
	/** The inputs table: `secret`, `client id`, `method`, `path`, and `timestamp` (v1) or `query`, `created`, `nonce` (v2), `body`. */
	inputs: Map<string, string>;
	/** The canonical string (v1) or the signature base (v2), from the page's `text` block. */
	signed: string;
	/** Every 64-character lowercase hex and every 44-character base64 value the section names, in order. */
	hex: string[];
	base64: string[];
	request: WireRequest;
	/** The `npm run sign` line: its environment and its arguments. */
	signer: { env: Record<string, string>; args: string[] };
}

export interface WireRequest {
	method: string;
	/** Path and query, as on the request line. */
	target: string;
	headers: [string, string][];
	body: string;
}

/** Every worked example of the page, in order. */
export function workedExamples(markdown: string): WorkedExample[] {
	const sections = markdown.split(/^### /m).filter((section) => section.startsWith("Worked example: "));
	return sections.map((raw) => {
		const section = raw.split(/^## /m)[0]!;
		const title = section.split("\n")[0]!;
		const inputs = new Map<string, string>();
		for (const [, name, value] of section.matchAll(/^\| ([a-z ]+) \| `([^`]*)`.*\|$/gm)) inputs.set(name!, value!);
		const blocks = fencedBlocks(section);
		const http = blocks.find((block) => block.lang === "http");
		const text = blocks.find((block) => block.lang === "text");
		const shell = blocks.find((block) => block.lang === "sh" && block.text.includes("npm run sign"));
		if (http === undefined || text === undefined || shell === undefined) throw new Error(`"${title}" lacks its http, text or sh block`);
		return {
			title,
			scheme: /^Worked example: v2/.test(title) ? "v2" : "v1",
			vectorCase: /The case `([^`]+)`/.exec(section)?.[1] ?? "",
			inputs,
			signed: text.text,
			hex: [...section.matchAll(/`([0-9a-f]{64})`/g)].map((match) => match[1]!),
			base64: [...section.matchAll(/`([A-Za-z0-9+/]{43}=)`/g)].map((match) => match[1]!),
			request: wireRequest(http.text),
			signer: signerLine(shell.text.split("\n").find((line) => line.includes("npm run sign"))!),
		};
	});
}

/** The fenced blocks of a Markdown text, their lines without the fence's indentation. */
function fencedBlocks(markdown: string): { lang: string; text: string }[] {
	const blocks: { lang: string; text: string }[] = [];
	const lines = markdown.split("\n");
	for (let i = 0; i < lines.length; i++) {
		const open = /^(\s*)(`{3,})\s*([\w-]*)\s*$/.exec(lines[i]!);
		if (open === null) continue;
		const body: string[] = [];
		let j = i + 1;
		while (j < lines.length && lines[j]!.trim() !== open[2]) body.push(lines[j++]!.slice(open[1]!.length));
		blocks.push({ lang: open[3]!, text: body.join("\n") });
		i = j;
	}
	return blocks;
}

/** A request as written on the page: request line, header lines, an empty line, the body. */
export function wireRequest(text: string): WireRequest {
	const [head, ...rest] = text.split("\n\n");
	const [requestLine, ...headerLines] = head!.split("\n");
	const [method, target, version] = requestLine!.split(" ");
	if (version !== "HTTP/1.1") throw new Error(`not a request line: ${requestLine}`);
	const headers = headerLines.map((line): [string, string] => {
		const colon = line.indexOf(": ");
		return [line.slice(0, colon), line.slice(colon + 2)];
	});
	return { method: method!, target: target!, headers, body: rest.join("\n\n") };
}

/** `NAME=value npm run sign -- args`: the environment and the arguments, single quotes as sh reads them. */
export function signerLine(line: string): { env: Record<string, string>; args: string[] } {
	const words = [...line.replace(/\s+#.*$/, "").matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2]!);
	const env: Record<string, string> = {};
	while (/^[A-Z_]+=/.test(words[0] ?? "")) {
		const word = words.shift()!;
		env[word.slice(0, word.indexOf("="))] = word.slice(word.indexOf("=") + 1);
	}
	if (words.slice(0, 4).join(" ") !== "npm run sign --") throw new Error(`not a signer line: ${line}`);
	return { env, args: words.slice(4) };
}
