// The deployment checklist as a program, against any deployed or local gateway:
//   npm run smoke -- --url https://agent-gateway.example.com [--expect-stub refused|allowed]
//                    [--client-id smoke-check] [--path /agent/chat] [--body JSON] [--scheme v1|v2]
// Secrets from the environment: SMOKE_HMAC_SECRET (or HMAC_SECRET) for the smoke client,
// METRICS_TOKEN for /metrics. Exit 0 when every check passed, 1 when one failed, 2 on bad usage.
import { parseArgs } from "node:util";
import { signRequest } from "../src/client/index.ts";

interface Check {
	name: string;
	ok: boolean;
	detail: string;
}

class UsageError extends Error {}

async function main(): Promise<number> {
	let values;
	try {
		({ values } = parseArgs({
			options: {
				url: { type: "string" },
				"client-id": { type: "string", default: "smoke-check" },
				path: { type: "string", default: "/agent/chat" },
				body: { type: "string", default: JSON.stringify({ messages: [{ role: "user", content: "smoke check" }] }) },
				"expect-stub": { type: "string", default: "refused" },
				scheme: { type: "string", default: "v1" },
			},
		}));
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
	if (values.url === undefined) throw new UsageError("--url is required");
	if (!/^https?:\/\//.test(values.url)) throw new UsageError("--url must be an http(s) URL");
	if (values["expect-stub"] !== "refused" && values["expect-stub"] !== "allowed") throw new UsageError("--expect-stub must be refused or allowed");
	if (!values.path.startsWith("/agent/")) throw new UsageError("--path must start with /agent/");
	if (values.scheme !== "v1" && values.scheme !== "v2") throw new UsageError("--scheme must be v1 or v2");
	const secret = process.env.SMOKE_HMAC_SECRET || process.env.HMAC_SECRET;
	if (!secret) throw new UsageError("set SMOKE_HMAC_SECRET (the smoke client's secret) in the environment");
	const base = values.url.replace(/\/+$/, "");
	const metricsToken = process.env.METRICS_TOKEN?.split(",")[0]?.trim();

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
		const response = await fetch(`${base}/metrics`, { headers: metricsToken ? { Authorization: `Bearer ${metricsToken}` } : {} });
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

	const signing = { clientId: values["client-id"], secret, method: "POST", path: values.path, body: values.body };
	// v2 (SPEC section 2b) on request: the same checks, signed with RFC 9421.
	const signed = values.scheme === "v2" ? await signRequest({ scheme: "v2", ...signing }) : await signRequest(signing);
	const send = () =>
		fetch(base + values.path, { method: "POST", headers: { ...(signed.headers as Record<string, string>), "Content-Type": "application/json" }, body: signed.body });

	await check("a signed request gives 200", async () => {
		const response = await send();
		const code = response.ok ? undefined : await codeOf(response);
		if (response.status === 403) throw new Error("403 bad_signature: the smoke client's secret differs from the gateway's");
		expect(response.status === 200, `expected 200, got ${response.status} ${code ?? ""}`);
		expect(response.headers.get("x-auth-mode") === "hmac", `expected X-Auth-Mode: hmac, got ${response.headers.get("x-auth-mode")}`);
		await response.arrayBuffer();
		return "200, X-Auth-Mode: hmac";
	});

	await check("its replay gives 409", async () => {
		const response = await send();
		const code = await codeOf(response);
		expect(response.status === 409 && code === "replay", `expected 409 replay, got ${response.status} ${code ?? ""}: is replay protection switched off?`);
		return `409 replay${response.headers.has("x-server-time") ? ", with X-Server-Time" : ""}`;
	});

	await check(`a stub request is ${values["expect-stub"]}`, async () => {
		const response = await fetch(base + values.path, { method: "POST", headers: { "X-Test-Mode": "stub", "Content-Type": "application/json" }, body: values.body });
		if (values["expect-stub"] === "allowed") {
			const reply = (await response.json().catch(() => ({}))) as { model?: string };
			expect(response.status === 200 && reply.model === "test-stub", `expected the stub answer, got ${response.status}`);
			expect(response.headers.get("x-auth-mode") === "bypass", "expected X-Auth-Mode: bypass");
			return "200 stub answer, X-Auth-Mode: bypass";
		}
		const code = await codeOf(response);
		expect(response.status === 401 && code === "missing_headers", `expected the stub header to be ignored (401), got ${response.status}: test modes are allowed here`);
		return "ignored: 401 missing_headers";
	});

	console.log(`Smoke check of ${base}`);
	for (const { name, ok, detail } of checks) console.log(`  ${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
	const failed = checks.filter((c) => !c.ok).length;
	console.log(`${checks.length - failed} passed, ${failed} failed`);
	return failed === 0 ? 0 : 1;
}

main().then(
	(code) => process.exit(code),
	(error: unknown) => {
		if (error instanceof UsageError) {
			console.error(`smoke: ${error.message}`);
			console.error("usage: npm run smoke -- --url URL [--expect-stub refused|allowed] [--client-id ID] [--path /agent/...] [--body JSON] [--scheme v1|v2]");
			process.exit(2);
		} else {
			console.error(`smoke: ${error instanceof Error ? error.message : String(error)}`);
			process.exit(1);
		}
	},
);
