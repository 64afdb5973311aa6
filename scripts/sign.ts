// Signs a request for the gateway and prints a ready curl command, or sends it (--send).
//   npm run sign -- [--url http://127.0.0.1:8787] [--method POST] [--path /agent/chat]
//                   [--data '<body>' | --data-file FILE] [--client-id ID] [--scheme v1|v2] [--send]
// The secret comes from HMAC_SECRET in the environment (or, for local use, .dev.vars).
import { existsSync, readFileSync } from "node:fs";
import { rateLimitInfo, signRequest } from "../src/client/index.ts";
import { parseOptions, runMain, UsageError } from "./lib/cli.ts";

const DEFAULT_BODY = JSON.stringify({ messages: [{ role: "user", content: "Hello from the signing CLI" }] });
const USAGE =
	"usage: npm run sign -- [--url URL] [--method GET|POST] [--path /agent/...] [--data BODY | --data-file FILE] [--client-id ID] [--timestamp MS] [--scheme v1|v2] [--send]\n" +
	"  Signs a request (scheme v1 by default, or v2: RFC 9421) and prints a curl command, or sends it with --send.\n" +
	"  --timestamp is in milliseconds since the epoch (default: now). The secret is HMAC_SECRET\n" +
	"  from the environment, else from .dev.vars in the current folder.";
const CLI = { name: "sign", usage: USAGE };

function secretFromEnvironment(): string {
	const fromEnv = process.env.HMAC_SECRET;
	if (fromEnv) return fromEnv.split(",")[0]!.trim();
	if (existsSync(".dev.vars")) {
		const line = readFileSync(".dev.vars", "utf8")
			.split("\n")
			.find((l) => l.startsWith("HMAC_SECRET="));
		if (line) {
			console.error("sign: using HMAC_SECRET from .dev.vars");
			return line.slice("HMAC_SECRET=".length).trim().split(",")[0]!.trim();
		}
	}
	throw new UsageError("set HMAC_SECRET in the environment");
}

function shellQuote(value: string): string {
	return `'${value.replace(/'/g, "'\\''")}'`;
}

async function main(): Promise<number> {
	const values = parseOptions(CLI, {
		url: { type: "string", default: process.env.GATEWAY_URL ?? "http://127.0.0.1:8787" },
		method: { type: "string", default: "POST" },
		path: { type: "string", default: "/agent/chat" },
		data: { type: "string" },
		"data-file": { type: "string" },
		"client-id": { type: "string", default: process.env.HMAC_CLIENT_ID ?? "dev-cli" },
		timestamp: { type: "string" },
		scheme: { type: "string", default: "v1" },
		send: { type: "boolean", default: false },
	});

	const method = values.method.toUpperCase();
	if (method !== "GET" && method !== "POST") throw new UsageError("--method must be GET or POST");
	const queryAt = values.path.indexOf("?");
	const path = queryAt === -1 ? values.path : values.path.slice(0, queryAt);
	const query = queryAt === -1 ? "" : values.path.slice(queryAt);
	if (!path.startsWith("/agent/") && !path.startsWith("/api/agent/")) throw new UsageError("--path must start with /agent/ or /api/agent/");
	if (values.timestamp !== undefined && !/^[0-9]{1,16}$/.test(values.timestamp)) throw new UsageError("--timestamp must be milliseconds");
	const bodyText =
		method === "GET" ? "" : values["data-file"] !== undefined ? readFileSync(values["data-file"], "utf8") : (values.data ?? DEFAULT_BODY);

	if (values.scheme !== "v1" && values.scheme !== "v2") throw new UsageError("--scheme must be v1 or v2");
	if (values.scheme === "v2" && values.timestamp !== undefined) throw new UsageError("--timestamp is for v1 (v2 signs created = now)");

	// v2 signs the path and query as sent (the /api alias with its /api), a fresh nonce and created = now.
	const { headers, body } = values.scheme === "v2" ? await signRequest({
		scheme: "v2",
		clientId: values["client-id"],
		secret: secretFromEnvironment(),
		method,
		path,
		query,
		body: bodyText,
	}) : await signRequest({
		clientId: values["client-id"],
		secret: secretFromEnvironment(),
		method,
		// The gateway verifies the path after removing the /api alias.
		path: path.startsWith("/api/agent/") ? path.slice("/api".length) : path,
		body: bodyText,
		timestamp: values.timestamp === undefined ? undefined : Number(values.timestamp),
	});
	const target = values.url.replace(/\/+$/, "") + path + query;
	const allHeaders: Record<string, string> = { ...(headers as Record<string, string>), ...(method === "POST" ? { "Content-Type": "application/json" } : {}) };

	if (!values.send) {
		const parts = ["curl", "-sS", "-i", "-X", method, shellQuote(target)];
		for (const [name, value] of Object.entries(allHeaders)) parts.push("-H", shellQuote(`${name}: ${value}`));
		if (method === "POST") parts.push("--data-binary", shellQuote(bodyText));
		console.log(parts.join(" "));
		return 0;
	}

	let response: Response;
	try {
		response = await fetch(target, { method, headers: allHeaders, body: method === "POST" ? body : undefined });
	} catch (error) {
		console.error(`sign: could not reach ${target}: ${(error as Error).message}`);
		return 1;
	}
	console.log(`HTTP ${response.status} ${response.statusText}`);
	for (const [name, value] of response.headers) console.log(`${name}: ${value}`);
	console.log("");
	if (response.body) for await (const chunk of response.body) process.stdout.write(chunk);
	process.stdout.write("\n");
	// A limit (429) or an unavailable store (503) says when to come back: surface it where a person looks.
	const { retryAfterMs } = rateLimitInfo(response);
	if (retryAfterMs !== null) {
		console.error(`sign: HTTP ${response.status}: retry after ${Math.ceil(retryAfterMs / 1000)} s (run this command again then: it signs anew)`);
	}
	return response.ok ? 0 : 1;
}

runMain(CLI, main);
