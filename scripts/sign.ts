// Signs a request for the gateway and prints a ready curl command, or sends it (--send): the
// repository's reference signer, which a client team can compare its own against with fixed
// inputs (--timestamp for v1; --created and --nonce for v2). `npm run sign -- --help` for the usage.
import { readFileSync } from "node:fs";
import { rateLimitInfo, signRequest } from "../src/client/index.ts";
import { defaultGatewayUrl, parseOptions, runMain, UsageError } from "./lib/cli.ts";
import { clientSecret, readDevVars, type SecretSetting } from "./lib/dev-vars.ts";

const DEFAULT_BODY = JSON.stringify({ messages: [{ role: "user", content: "Hello from the signing CLI" }] });
const USAGE = [
	"usage: npm run sign -- [--url URL] [--method GET|POST] [--path /agent/...[?query]] [--data BODY | --data-file FILE]",
	"                       [--client-id ID] [--scheme v1|v2] [--timestamp MS] [--created S] [--nonce NONCE] [--alg]",
	"                       [--token-limit N] [--send]",
	"  Signs a request (scheme v1 by default, or v2: RFC 9421) and prints a curl command, or sends it with --send.",
	"  URL defaults to GATEWAY_URL from the environment, else http://127.0.0.1:8787 (npm run dev).",
	"  --data-file sends a file's bytes as the body (for bodies too large for one argument).",
	"  --token-limit N sends X-Token-Limit: N, the most this request may spend of the client's token budget",
	"  (v2 signs it). With --send, a 429 or 503 prints when to come back, and an answer names the tokens left.",
	"  v1: --timestamp in milliseconds since the epoch (default: now).",
	"  v2: --created in seconds since the epoch (default: now), --nonce 16 to 64 of A-Z a-z 0-9 _ - (default: random),",
	"  --alg adds the optional alg=\"hmac-sha256\" parameter.",
	"  Fixed inputs give the same output every time. The secret: HMAC_SECRET from the environment, else",
	"  from .dev.vars in the current folder (the client's own in HMAC_CLIENTS, else HMAC_SECRET).",
].join("\n");
const CLI = { name: "sign", usage: USAGE };

/** The secret to sign with: the environment's HMAC_SECRET, else the one the local gateway verifies this client with. */
function secretFor(clientId: string): SecretSetting {
	const fromEnv = process.env.HMAC_SECRET;
	if (fromEnv) return { value: fromEnv.split(",")[0]!.trim(), source: "HMAC_SECRET" };
	const devVars = readDevVars();
	const fromFile = devVars === undefined ? undefined : clientSecret(devVars, clientId, ".dev.vars");
	if (fromFile === undefined) throw new UsageError("set HMAC_SECRET in the environment");
	console.error(`sign: using ${fromFile.source}`);
	return fromFile;
}

/** The exact bytes of a body file (not re-encoded: a signed body is its bytes). */
function readBodyFile(path: string): Uint8Array {
	try {
		return readFileSync(path);
	} catch (error) {
		throw new UsageError(`cannot read --data-file ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
	}
}

function shellQuote(value: string): string {
	return `'${value.replace(/'/g, "'\\''")}'`;
}

async function main(): Promise<number> {
	const values = parseOptions(CLI, {
		url: { type: "string", default: defaultGatewayUrl() },
		method: { type: "string", default: "POST" },
		path: { type: "string", default: "/agent/chat" },
		data: { type: "string" },
		"data-file": { type: "string" },
		"client-id": { type: "string", default: process.env.HMAC_CLIENT_ID ?? "dev-cli" },
		timestamp: { type: "string" },
		created: { type: "string" },
		nonce: { type: "string" },
		alg: { type: "boolean", default: false },
		scheme: { type: "string", default: "v1" },
		"token-limit": { type: "string" },
		send: { type: "boolean", default: false },
	});

	const method = values.method.toUpperCase();
	if (method !== "GET" && method !== "POST") throw new UsageError("--method must be GET or POST");
	const queryAt = values.path.indexOf("?");
	const path = queryAt === -1 ? values.path : values.path.slice(0, queryAt);
	const query = queryAt === -1 ? "" : values.path.slice(queryAt);
	if (!path.startsWith("/agent/") && !path.startsWith("/api/agent/")) throw new UsageError("--path must start with /agent/ or /api/agent/");
	if (values.timestamp !== undefined && !/^[0-9]{1,16}$/.test(values.timestamp)) throw new UsageError("--timestamp must be milliseconds");
	const dataFile = values["data-file"];
	if (dataFile !== undefined && values.data !== undefined) throw new UsageError("--data and --data-file exclude each other");
	if (method === "GET" && (dataFile !== undefined || values.data !== undefined)) throw new UsageError("a GET carries no body: --data and --data-file are for POST");
	const bodyBytes = method === "GET" ? new Uint8Array(0) : dataFile !== undefined ? readBodyFile(dataFile) : new TextEncoder().encode(values.data ?? DEFAULT_BODY);

	if (values.scheme !== "v1" && values.scheme !== "v2") throw new UsageError("--scheme must be v1 or v2");
	if (values.scheme === "v2" && values.timestamp !== undefined) throw new UsageError("--timestamp is for v1 (v2 takes --created, in seconds)");
	if (values.scheme === "v1" && (values.created !== undefined || values.nonce !== undefined || values.alg)) throw new UsageError("--created, --nonce and --alg are for --scheme v2 (v1 takes --timestamp)");
	if (values.created !== undefined && !/^[0-9]{1,16}$/.test(values.created)) throw new UsageError("--created must be integer seconds since the epoch");
	if (values.nonce !== undefined && !/^[A-Za-z0-9_-]{16,64}$/.test(values.nonce)) throw new UsageError("--nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -");
	const tokenLimitOption = values["token-limit"];
	if (tokenLimitOption !== undefined && !/^[1-9][0-9]{0,14}$/.test(tokenLimitOption)) throw new UsageError("--token-limit must be a whole number from 1");
	const tokenLimit = tokenLimitOption === undefined ? undefined : Number(tokenLimitOption);
	const secret = secretFor(values["client-id"]).value;

	// v2 signs the path and query as sent (the /api alias with its /api); a fresh nonce and created = now unless given.
	const { headers, body } = values.scheme === "v2" ? await signRequest({
		scheme: "v2",
		clientId: values["client-id"],
		secret,
		method,
		path,
		query,
		body: bodyBytes,
		created: values.created === undefined ? undefined : Number(values.created),
		nonce: values.nonce,
		alg: values.alg,
		tokenLimit,
	}) : await signRequest({
		clientId: values["client-id"],
		secret,
		method,
		// The gateway verifies the path after removing the /api alias.
		path: path.startsWith("/api/agent/") ? path.slice("/api".length) : path,
		body: bodyBytes,
		timestamp: values.timestamp === undefined ? undefined : Number(values.timestamp),
		tokenLimit,
	});
	const target = values.url.replace(/\/+$/, "") + path + query;
	const allHeaders: Record<string, string> = { ...(headers as Record<string, string>), ...(method === "POST" ? { "Content-Type": "application/json" } : {}) };

	if (!values.send) {
		const parts = ["curl", "-sS", "-i", "-X", method, shellQuote(target)];
		for (const [name, value] of Object.entries(allHeaders)) parts.push("-H", shellQuote(`${name}: ${value}`));
		if (method === "POST") parts.push("--data-binary", dataFile !== undefined ? shellQuote(`@${dataFile}`) : shellQuote(values.data ?? DEFAULT_BODY));
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
	// The gateway's own answers are small JSON: kept to read their code; the backend's stream straight through.
	const own = response.headers.get("x-auth-mode") === null && (response.headers.get("content-type") ?? "").startsWith("application/json");
	const kept: Uint8Array[] = [];
	if (response.body) {
		for await (const chunk of response.body) {
			process.stdout.write(chunk);
			if (own) kept.push(chunk);
		}
	}
	process.stdout.write("\n");
	const code = own ? codeOf(Buffer.concat(kept)) : undefined;
	for (const line of limitLines(response, code)) console.error(`sign: ${line}`);
	return response.ok ? 0 : 1;
}

/** The `code` of a gateway error answer, if it has one. */
function codeOf(body: Uint8Array): string | undefined {
	try {
		const code = (JSON.parse(Buffer.from(body).toString("utf8")) as { code?: unknown }).code;
		return typeof code === "string" ? code : undefined;
	} catch {
		return undefined;
	}
}

/**
 * What a person should know of the limits from an answer: when to come back after a 429 or 503,
 * and which token budget is spent (docs/design.md, "Token budgets"); the tokens left otherwise.
 */
function limitLines(response: { status: number; headers: Headers }, code: string | undefined): string[] {
	const { retryAfterMs, limits, tokensRemaining } = rateLimitInfo(response);
	const lines: string[] = [];
	if (code === "token_budget_exhausted") {
		const spent = Object.entries(limits).filter(([name, limit]) => name.endsWith("_tokens") && limit.remaining === 0).map(([name]) => name);
		lines.push(`HTTP 429 token_budget_exhausted: ${spent.length > 0 ? `the ${spent.join(" and ")} budget is` : "a token budget is"} spent until its window ends`);
	} else if (tokensRemaining !== null) {
		lines.push(`tokens left: ${Object.entries(limits).filter(([name]) => name.endsWith("_tokens")).map(([name, limit]) => `${name} ${limit.remaining}`).join(", ")}`);
	}
	// A limit (429) or an unavailable store (503) says when to come back: surface it where a person looks.
	if (retryAfterMs !== null) {
		lines.push(`HTTP ${response.status}: retry after ${Math.ceil(retryAfterMs / 1000)} s (run this command again then: it signs anew)`);
	}
	return lines;
}

runMain(CLI, main);
