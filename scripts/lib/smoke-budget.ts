// `npm run smoke`'s checks of a client with a token budget (docs/design.md, "Token budgets"):
// its answer carries the budget's RateLimit fields, the origin spends within the hold the
// gateway forwarded, and the origin's report reaches the gateway (the held tokens come back).
import { rateLimitInfo, signRequest } from "../../src/client/index.ts";

/** What the budget checks send: as the smoke client sends, with the budgeted client's id and secret. */
export interface BudgetSmoke {
	target: string;
	signing: { clientId: string; secret: string; method: string; path: string; query: string; body: string };
	scheme: "v1" | "v2";
	/** Where the budgeted client's secret came from, named when the gateway refuses it. */
	secretSource: string;
	/** `--token-limit`: the first request's X-Token-Limit, so the report returns part of the hold. */
	tokenLimit: number;
	check(name: string, run: () => Promise<string>): Promise<void>;
}

const TOKEN_POLICIES = ["daily_tokens", "monthly_tokens"] as const;
/** Probes after the first request, a second apart: a settle runs in the gateway's background. */
const PROBES = 5;

export async function budgetChecks(smoke: BudgetSmoke): Promise<void> {
	const { clientId } = smoke.signing;
	const send = async (tokenLimit: number) => {
		const { query, ...v1 } = smoke.signing;
		// Each request signed anew (a fresh timestamp or nonce); v1 signs the path without its query.
		const { headers, body } = smoke.scheme === "v2" ? await signRequest({ scheme: "v2", ...v1, query, tokenLimit }) : await signRequest({ ...v1, tokenLimit });
		return fetch(smoke.target, { method: "POST", headers: { ...(headers as Record<string, string>), "Content-Type": "application/json" }, body });
	};
	/** Fails with what the gateway said when an answer is not a 200 with a token budget. */
	const budgetOf = async (response: Response) => {
		if (response.status === 403) throw new Error(`403: the secret for ${clientId} (${smoke.secretSource}) differs from the gateway's`);
		const code = response.ok ? undefined : (((await response.json().catch(() => ({}))) as { code?: string }).code ?? "");
		const { retryAfterMs, limits } = rateLimitInfo(response);
		if (code === "token_budget_exhausted") throw new Error(`429 token_budget_exhausted: ${clientId}'s budget is spent for ${Math.ceil((retryAfterMs ?? 0) / 1000)} s more`);
		if (code === "budget_unavailable") throw new Error("503 budget_unavailable: the gateway cannot reach Upstash to check budgets");
		if (!response.ok) throw new Error(`expected 200, got ${response.status} ${code}`);
		const policy = TOKEN_POLICIES.find((name) => limits[name] !== undefined);
		if (policy === undefined) throw new Error(`${clientId} has no token budget: give it daily_tokens or monthly_tokens in CLIENT_LIMITS (or its keyring record)`);
		return { policy, remaining: limits[policy]!.remaining };
	};

	let first: { policy: string; remaining: number; usage: string | null } | null = null;
	await smoke.check(`client ${clientId} gets 200 with its token budget's RateLimit fields`, async () => {
		const response = await send(smoke.tokenLimit);
		const budget = await budgetOf(response);
		await response.arrayBuffer();
		first = { ...budget, usage: response.headers.get("x-token-usage") };
		return `200, RateLimit: ${response.headers.get("ratelimit")}`;
	});

	await smoke.check("the origin spends within the hold the gateway forwarded", async () => {
		if (first === null) throw new Error("not checked: no budgeted request was accepted");
		if (first.usage === null) throw new Error("the answer carries no X-Token-Usage: a plain answer reports what it spent in that header (docs/origin.md)");
		if (!/^[0-9]{1,15}$/.test(first.usage)) throw new Error("X-Token-Usage is not a whole number of tokens");
		const usage = Number(first.usage);
		if (usage > smoke.tokenLimit) throw new Error(`the origin reported ${usage} tokens for a hold of at most ${smoke.tokenLimit}: does it read X-Token-Hold?`);
		return `X-Token-Usage: ${usage}, within the hold (at most ${smoke.tokenLimit})`;
	});

	await smoke.check("the origin's report reaches the gateway", async () => {
		if (first === null) throw new Error("not checked: no budgeted request was accepted");
		// The report gives back the hold's unspent part: a probe holding 1 token then sees at least as
		// much left as the first answer did; without it, a probe sees at most one less each time.
		for (let probe = 1; probe <= PROBES; probe++) {
			await new Promise((resolve) => setTimeout(resolve, probe === 1 ? 250 : 1000));
			const response = await send(1);
			const { remaining } = await budgetOf(response);
			await response.arrayBuffer();
			if (remaining >= first.remaining) return `the hold came back: ${first.policy} r=${first.remaining}, then r=${remaining} on a probe`;
		}
		throw new Error(
			`the first request's hold is still held after ${PROBES} probes: no report reached the gateway (X-Token-Usage on the answer, or POST /gateway/usage with ORIGIN_TOKEN), or the origin spent the whole hold (a larger --token-limit tells them apart)`,
		);
	});
}
