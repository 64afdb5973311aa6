// The deployment checklist as a program, against any deployed or local gateway:
//   npm run smoke -- [--url https://agent-gateway.example.com] [--expect-stub refused|allowed]
//                    [--client-id smoke-check] [--path /agent/chat] [--body JSON] [--scheme v1|v2]
//                    [--limit-client-id smoke-limit] [--budget-client-id smoke-budget] [--token-limit 1024]
// Secrets from the environment: SMOKE_HMAC_SECRET (or HMAC_SECRET) for the smoke client,
// METRICS_TOKEN for /metrics and the /healthz details. Against a loopback URL, what the
// environment does not give is read from .dev.vars (as `npm run sign` does), and a
// development or test ENVIRONMENT there means test modes are expected to be allowed.
// Exit 0 when every check passed, 1 when one failed, 2 on bad usage.
import { signRequest } from "../src/client/index.ts";
import { defaultGatewayUrl, parseOptions, runMain, UsageError } from "./lib/cli.ts";
import { clientSecret, readDevVars } from "./lib/dev-vars.ts";
import { budgetChecks } from "./lib/smoke-budget.ts";

const CLI = {
	name: "smoke",
	usage: [
		"usage: npm run smoke -- [--url URL] [--expect-stub refused|allowed] [--client-id ID] [--path /agent/...] [--body JSON] [--scheme v1|v2]",
		"                        [--limit-client-id ID] [--budget-client-id ID [--token-limit 1024]]",
		"  Runs the deployment checklist against the gateway at URL: /healthz, /metrics, 401 without",
		"  headers, 200 signed, 409 replayed, replay claims reaching Upstash, test modes refused or allowed.",
		"  URL defaults to GATEWAY_URL from the environment, else http://127.0.0.1:8787 (npm run dev), as for npm run sign.",
		"  It signs as the smoke client, --client-id (default smoke-check: docs/deploy.md gives it an id of its own).",
		"  Secrets: SMOKE_HMAC_SECRET (or HMAC_SECRET) and METRICS_TOKEN from the environment; against a",
		"  loopback URL, else from .dev.vars. --expect-stub defaults to allowed when .dev.vars says",
		"  ENVIRONMENT=development or test (loopback URL only), else refused.",
		"  --limit-client-id ID: also prove a per-client limit with that client id of its own, which",
		"  CLIENT_LIMITS gives {\"rpm\": 1} (its secret: SMOKE_LIMIT_HMAC_SECRET, else the smoke client's): two",
		"  fresh signed requests, the second refused with 429 rate_limited; at most one origin call a minute.",
		"  --budget-client-id ID: also prove a token budget with that client id of its own, which CLIENT_LIMITS",
		"  gives daily_tokens or monthly_tokens (its secret: SMOKE_BUDGET_HMAC_SECRET, else the smoke client's): a",
		"  200 with the budget's RateLimit fields, the origin's X-Token-Usage within the hold (--token-limit sends",
		"  X-Token-Limit), and its report reaching the gateway (probes holding 1 token see the hold come back).",
		"  Exit status: 0 all passed, 1 a check failed or the gateway could not be reached, 2 bad usage.",
	].join("\n"),
};

interface Check {
	name: string;
	ok: boolean;
	detail: string;
}

/** Why a fetch failed, in words (Node's "fetch failed" hides the cause). */
function unreachableReason(error: unknown): string {
	const cause = (error as { cause?: { code?: string; message?: string } }).cause;
	switch (cause?.code) {
		case "ECONNREFUSED":
			return "connection refused: nothing listens there (is the gateway running? `npm run dev` locally)";
		case "ENOTFOUND":
		case "EAI_AGAIN":
			return "the host name does not resolve (DNS)";
		case "ETIMEDOUT":
		case "UND_ERR_CONNECT_TIMEOUT":
			return "the connection timed out";
		case "ECONNRESET":
			return "the connection was reset";
		default:
			if (cause?.code?.startsWith("ERR_TLS") || /certificate|SSL|TLS/i.test(cause?.message ?? "")) return `TLS failed: ${cause?.message}`;
			return cause?.message ?? (error instanceof Error ? error.message : String(error));
	}
}

/** Where a setting came from, named in hints ("SMOKE_HMAC_SECRET", "HMAC_SECRET in .dev.vars"). */
interface Setting {
	value: string;
	source: string;
}

function firstOf(list: string): string {
	return list.split(",")[0]!.trim();
}

async function main(): Promise<number> {
	const values = parseOptions(CLI, {
		url: { type: "string", default: defaultGatewayUrl() },
		"client-id": { type: "string", default: "smoke-check" },
		path: { type: "string", default: "/agent/chat" },
		body: { type: "string", default: JSON.stringify({ messages: [{ role: "user", content: "smoke check" }] }) },
		"expect-stub": { type: "string" },
		scheme: { type: "string", default: "v1" },
		"limit-client-id": { type: "string" },
		"budget-client-id": { type: "string" },
		"token-limit": { type: "string", default: "1024" },
	});
	if (!/^https?:\/\//.test(values.url)) throw new UsageError("--url must be an http(s) URL");
	if (values["expect-stub"] !== undefined && values["expect-stub"] !== "refused" && values["expect-stub"] !== "allowed") {
		throw new UsageError("--expect-stub must be refused or allowed");
	}
	if (!values.path.startsWith("/agent/")) throw new UsageError("--path must start with /agent/");
	// The query is sent, and signed as each scheme signs it (v1 signs the path alone).
	const queryAt = values.path.indexOf("?");
	const path = queryAt === -1 ? values.path : values.path.slice(0, queryAt);
	const query = queryAt === -1 ? "" : values.path.slice(queryAt);
	if (values.scheme !== "v1" && values.scheme !== "v2") throw new UsageError("--scheme must be v1 or v2");
	const limitClientId = values["limit-client-id"];
	if (limitClientId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(limitClientId)) throw new UsageError("--limit-client-id must be a client id");
	const budgetClientId = values["budget-client-id"];
	if (budgetClientId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(budgetClientId)) throw new UsageError("--budget-client-id must be a client id");
	if (!/^[1-9][0-9]{0,8}$/.test(values["token-limit"])) throw new UsageError("--token-limit must be a whole number from 1");
	const base = values.url.replace(/\/+$/, "");

	// A local gateway (`npm run dev`) runs on the settings of .dev.vars: read what the
	// environment does not say from there. A remote one never is.
	const devVarsHere = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(base).hostname) ? readDevVars() : undefined;
	const local = devVarsHere !== undefined;
	const devVars = devVarsHere ?? new Map<string, string>();
	const fromEnv = (name: string): Setting | undefined => (process.env[name] ? { value: process.env[name]!, source: name } : undefined);
	const fromDevVars = (name: string): Setting | undefined => (devVars.get(name) ? { value: devVars.get(name)!, source: `${name} in .dev.vars` } : undefined);
	const secret = fromEnv("SMOKE_HMAC_SECRET") ?? fromEnv("HMAC_SECRET") ?? clientSecret(devVars, values["client-id"], ".dev.vars");
	if (secret === undefined) throw new UsageError("set SMOKE_HMAC_SECRET (the smoke client's secret) in the environment");
	const metricsToken = fromEnv("METRICS_TOKEN") ?? fromDevVars("METRICS_TOKEN");
	const devEnvironment = devVars.get("ENVIRONMENT");
	const stubsAllowedLocally = devEnvironment === "development" || devEnvironment === "test" || devVars.get("ALLOW_TEST_STUBS") === "1";
	const expectStub = values["expect-stub"] ?? (stubsAllowedLocally ? "allowed" : "refused");
	if (local) console.log(`Using .dev.vars for what the environment does not set${values["expect-stub"] === undefined ? ` (test modes expected ${expectStub})` : ""}`);
	const metricsHeaders: Record<string, string> = metricsToken ? { Authorization: `Bearer ${firstOf(metricsToken.value)}` } : {};

	// One probe first: an unreachable gateway is one clear line, not six failures.
	try {
		await (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(15_000) })).arrayBuffer();
	} catch (error) {
		console.error(`smoke: could not reach ${base}: ${error instanceof Error && error.name === "TimeoutError" ? "no answer within 15 s" : unreachableReason(error)}`);
		return 1;
	}

	const checks: Check[] = [];
	const check = async (name: string, run: () => Promise<string>) => {
		try {
			checks.push({ name, ok: true, detail: await run() });
		} catch (error) {
			checks.push({ name, ok: false, detail: error instanceof Error ? error.message : String(error) });
		}
	};
	const expect = (condition: boolean, message: string) => {
		if (!condition) throw new Error(message);
	};
	const codeOf = async (response: Response) => ((await response.json().catch(() => ({}))) as { code?: string }).code;

	await check("healthz answers", async () => {
		const response = await fetch(`${base}/healthz`);
		expect(response.status === 200, `GET /healthz: expected 200, got ${response.status}`);
		const { status } = (await response.json()) as { status?: string };
		return `status ${status}`;
	});

	await check("metrics route answers with the gateway's series", async () => {
		const response = await fetch(`${base}/metrics`, { headers: metricsHeaders });
		if (response.status === 401) throw new Error("GET /metrics: 401, set METRICS_TOKEN to the gateway's metrics token");
		expect(response.status === 200, `GET /metrics: expected 200, got ${response.status}`);
		expect((response.headers.get("content-type") ?? "").startsWith("text/plain; version=0.0.4"), "GET /metrics: not Prometheus text format 0.0.4");
		const text = await response.text();
		for (const series of ["agent_chat_requests_total", "agent_chat_replay_attempts_total", "agent_auth_skew_milliseconds_bucket", "agent_metrics_aggregated"]) {
			expect(text.includes(series), `GET /metrics: no ${series}`);
		}
		const aggregated = /^agent_metrics_aggregated (\S+)$/m.exec(text)?.[1];
		return aggregated === "1" ? "aggregate of all isolates" : "answered by one isolate (aggregator not reached)";
	});

	await check("missing signature headers give 401", async () => {
		const response = await fetch(base + values.path, { method: "POST", headers: { "Content-Type": "application/json" }, body: values.body });
		const code = await codeOf(response);
		expect(response.status === 401 && code === "missing_headers", `expected 401 missing_headers, got ${response.status} ${code ?? ""}: is authentication switched off?`);
		return "401 missing_headers";
	});

	const signing = { clientId: values["client-id"], secret: firstOf(secret.value), method: "POST", path, body: values.body };
	// v2 (docs/design.md, "Scheme v2") on request: the same checks, signed with RFC 9421.
	const signed = values.scheme === "v2" ? await signRequest({ scheme: "v2", ...signing, query }) : await signRequest(signing);
	const send = () =>
		fetch(base + values.path, { method: "POST", headers: { ...(signed.headers as Record<string, string>), "Content-Type": "application/json" }, body: signed.body });

	// Whether the replay check below has an accepted request to replay.
	let accepted = false;
	await check("a signed request gives 200", async () => {
		const response = await send();
		const code = response.ok ? undefined : await codeOf(response);
		if (response.status === 403) {
			throw new Error(
				`403 bad_signature: the smoke client's secret (${secret.source}) differs from the gateway's for client ${values["client-id"]} (its keyring record, else its entry in HMAC_CLIENTS, else HMAC_SECRET), or the keyring disabled or revoked it (npm run keys -- show ${values["client-id"]})`,
			);
		}
		accepted = response.status === 200;
		const origin = code === "origin_unreachable" || code === "origin_timeout" ? ": the gateway does not get an answer from its origin (ORIGIN_URL)" : "";
		expect(response.status === 200, `expected 200, got ${response.status} ${code ?? ""}${origin}`);
		expect(response.headers.get("x-auth-mode") === "hmac", `expected X-Auth-Mode: hmac, got ${response.headers.get("x-auth-mode")}`);
		await response.arrayBuffer();
		return "200, X-Auth-Mode: hmac";
	});

	await check("its replay gives 409", async () => {
		const response = await send();
		const code = await codeOf(response);
		const why = accepted ? "is replay protection switched off?" : "the signed request above was not accepted, so there was nothing to replay";
		expect(response.status === 409 && code === "replay", `expected 409 replay, got ${response.status}${code === undefined ? "" : ` ${code}`}: ${why}`);
		return `409 replay${response.headers.has("x-server-time") ? ", with X-Server-Time" : ""}`;
	});

	// The 409 above may come from an isolate's memory when Upstash fails (the degraded
	// fallback): ask the gateway, after the claim, whether its claims reach Upstash.
	await check("replay claims reach the shared store", async () => {
		const response = await fetch(`${base}/healthz`, { headers: metricsHeaders });
		const health = (await response.json().catch(() => ({}))) as {
			status?: string;
			replay?: { store?: string; upstash_configured?: boolean; degraded?: boolean; breaker?: string };
		};
		if (health.replay === undefined) {
			expect(health.status === "ok", `GET /healthz: ${health.status ?? response.status}: claims are not all reaching Upstash (set METRICS_TOKEN for details)`);
			return "status ok (set METRICS_TOKEN for the store's details)";
		}
		const { store, upstash_configured: upstash, degraded, breaker } = health.replay;
		if (upstash) {
			expect(!degraded && breaker === "closed", `Upstash is configured but claims are not reaching it (breaker ${breaker}): replays are refused per isolate only`);
			return "upstash, breaker closed";
		}
		expect(!degraded, "no Upstash configured: replay claims are per isolate only (set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN)");
		return `${store} (no Upstash: allowed in development)`;
	});

	await check(`a stub request is ${expectStub}`, async () => {
		const response = await fetch(base + values.path, { method: "POST", headers: { "X-Test-Mode": "stub", "Content-Type": "application/json" }, body: values.body });
		if (expectStub === "allowed") {
			const reply = (await response.json().catch(() => ({}))) as { model?: string };
			expect(response.status === 200 && reply.model === "test-stub", `expected the stub answer, got ${response.status}`);
			expect(response.headers.get("x-auth-mode") === "bypass", "expected X-Auth-Mode: bypass");
			return "200 stub answer, X-Auth-Mode: bypass";
		}
		const code = await codeOf(response);
		expect(response.status === 401 && code === "missing_headers", `expected the stub header to be ignored (401), got ${response.status}: test modes are allowed here`);
		return "ignored: 401 missing_headers";
	});

	if (limitClientId !== undefined) {
		const limitSecret = fromEnv("SMOKE_LIMIT_HMAC_SECRET") ?? secret;
		const limited = { ...signing, clientId: limitClientId, secret: firstOf(limitSecret.value) };
		// Each request signed anew: a limit refuses what is new, where a replay would be 409.
		const sendLimited = async () => {
			const fresh = values.scheme === "v2" ? await signRequest({ scheme: "v2", ...limited, query }) : await signRequest(limited);
			return fetch(base + values.path, { method: "POST", headers: { ...(fresh.headers as Record<string, string>), "Content-Type": "application/json" }, body: fresh.body });
		};
		await check(`client ${limitClientId} is refused past its limit (429)`, async () => {
			let response = await sendLimited();
			if (response.status === 200) {
				await response.arrayBuffer();
				expect(response.headers.has("ratelimit-policy"), `client ${limitClientId} has no limit: give it {"rpm": 1} in CLIENT_LIMITS`);
				response = await sendLimited();
			}
			const code = await codeOf(response);
			if (response.status === 403) throw new Error(`403: the secret for ${limitClientId} (${limitSecret.source}) differs from the gateway's`);
			expect(response.status === 429, `expected 429 after the first request, got ${response.status} ${code ?? ""}: give ${limitClientId} {"rpm": 1} in CLIENT_LIMITS`);
			const retryAfter = response.headers.get("retry-after");
			expect(retryAfter !== null && /^[0-9]+$/.test(retryAfter), "429 without a Retry-After in seconds");
			expect(response.headers.has("ratelimit-policy") && response.headers.has("ratelimit"), "429 without the RateLimit-Policy and RateLimit fields");
			return `429 ${code}, Retry-After ${retryAfter} s, RateLimit: ${response.headers.get("ratelimit")}`;
		});
	}

	if (budgetClientId !== undefined) {
		const budgetSecret = fromEnv("SMOKE_BUDGET_HMAC_SECRET") ?? secret;
		await budgetChecks({
			target: base + values.path,
			signing: { ...signing, clientId: budgetClientId, secret: firstOf(budgetSecret.value), query },
			scheme: values.scheme,
			secretSource: budgetSecret.source,
			tokenLimit: Number(values["token-limit"]),
			check,
		});
	}

	console.log(`Smoke check of ${base}`);
	for (const { name, ok, detail } of checks) console.log(`  ${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
	const failed = checks.filter((c) => !c.ok).length;
	console.log(`${checks.length - failed} passed, ${failed} failed`);
	return failed === 0 ? 0 : 1;
}

runMain(CLI, main);
