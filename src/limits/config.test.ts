import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { readClientLimits, readEntry } from "./config.ts";
import type { Logger } from "../log.ts";
import { LimitPolicies } from "./policy.ts";

/** A production configuration with Upstash and per-client secrets only: limits add no warning to it. */
const BASE: Env = {
	ENVIRONMENT: "production",
	ORIGIN_URL: "https://origin.example.com",
	ORIGIN_TOKEN: "origin-token",
	HMAC_CLIENTS: JSON.stringify({ svc: "a-secret-of-at-least-32-characters" }),
	METRICS_TOKEN: "metrics-token",
	UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
	UPSTASH_REDIS_REST_TOKEN: "upstash-token",
};

function read(text: unknown) {
	const problems: string[] = [];
	const strict: string[] = [];
	const limits = readClientLimits(text, { problem: (p) => problems.push(p), strict: (p) => strict.push(p) });
	return { limits, problems, strict };
}

function problemsOf(env: Env): readonly string[] {
	try {
		loadConfig(env);
	} catch (error) {
		if (error instanceof ConfigError) return error.problems;
		throw error;
	}
	return [];
}

describe("CLIENT_LIMITS", () => {
	it("unset or blank: no limits at all", () => {
		expect(read(undefined)).toEqual({ limits: null, problems: [], strict: [] });
		expect(read("  ")).toEqual({ limits: null, problems: [], strict: [] });
		expect(loadConfig(BASE).limits).toBeNull();
	});

	it("an id's entry replaces the default as a whole; {} exempts; others get the default", () => {
		const { limits, problems } = read('{"*": {"rpm": 60, "rpd": 1000}, "batch": {"rpd": 5000, "label": true}, "ops": {}}');
		expect(problems).toEqual([]);
		expect(limits!.policyFor("anyone")).toEqual({ rpm: 60, rpd: 1000, concurrent: null, label: "" });
		expect(limits!.policyFor("batch")).toEqual({ rpm: null, rpd: 5000, concurrent: null, label: "batch" });
		expect(limits!.policyFor("ops")).toBeNull();
		expect(limits!.labelledClients).toEqual(["batch"]);
		expect(limits!.anyConcurrent).toBe(false);
	});

	it("without a default, only listed ids are limited; a policy is the same object every time (built once)", () => {
		const { limits } = read('{"svc": {"concurrent": 2}}');
		expect(limits!.policyFor("other")).toBeNull();
		expect(limits!.policyFor("svc")).toBe(limits!.policyFor("svc"));
		expect(limits!.anyConcurrent).toBe(true);
		expect(read('{"*": {"concurrent": 1}}').limits!.anyConcurrent).toBe(true);
	});

	it("token budgets (docs/design.md, \"Token budgets\"): daily, monthly, a hold of 4096 unless given; none without the fields", () => {
		const { limits, problems } = read(
			'{"*": {"rpm": 60}, "agent": {"daily_tokens": 200000, "monthly_tokens": 5000000}, "small": {"monthly_tokens": 9000, "token_hold": 512}, "day": {"daily_tokens": 1}}',
		);
		expect(problems).toEqual([]);
		expect(limits!.policyFor("agent")).toEqual({ rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 200_000, monthly: 5_000_000, hold: 4096 } });
		expect(limits!.policyFor("small")!.budget).toEqual({ daily: null, monthly: 9000, hold: 512 });
		expect(limits!.policyFor("day")!.budget).toEqual({ daily: 1, monthly: null, hold: 4096 });
		expect(limits!.policyFor("anyone")).not.toHaveProperty("budget");
		// A budget alone is a limit: the client is not exempt.
		expect(read('{"agent": {"daily_tokens": 10}}').limits!.policyFor("agent")).not.toBeNull();
	});

	it("a keyring record's budget is read with the same rules; a record with a budget alone is limited", () => {
		const log: Logger = { warn: () => {}, error: () => {}, info: () => {} };
		const records = new Map<string, Record<string, unknown>>([
			["budgeted", { daily_tokens: 700, token_hold: 64 }],
			["broken", { daily_tokens: -1 }],
			["exempt", {}],
		]);
		const policies = new LimitPolicies(read('{"*": {"rpm": 60}}').limits, { limitsFor: (id) => records.get(id) }, readEntry, log);
		expect(policies.policyFor("budgeted")).toEqual({ rpm: null, rpd: null, concurrent: null, label: "", budget: { daily: 700, monthly: null, hold: 64 } });
		expect(policies.policyFor("broken")).toEqual({ rpm: 60, rpd: null, concurrent: null, label: "" });
		// A record's {} replaces the default as a whole: no limit at all, so no cost and no headers.
		expect(policies.policyFor("exempt")).toBeNull();
	});

	it("a keyring record whose limits break the rules is logged at once, then at most once in 10 s with how many were held back", () => {
		const warned: unknown[][] = [];
		const log: Logger = { warn: (...args: unknown[]) => void warned.push(args), error: () => {}, info: () => {} } as Logger;
		const clock = { now: 1_000_000 };
		const records = new Map<string, Record<string, unknown>>([["broken", { rpm: "sixty" }]]);
		const policies = new LimitPolicies(read('{"*": {"rpm": 60}}').limits, { limitsFor: (id) => records.get(id) }, readEntry, log, () => clock.now);
		expect(policies.policyFor("broken")).toMatchObject({ rpm: 60 });
		expect(warned).toHaveLength(1);
		expect(warned[0]![1]).toEqual({ suppressed: 0 });
		policies.policyFor("broken");
		clock.now += 9_999;
		policies.policyFor("broken");
		expect(warned).toHaveLength(1);
		clock.now += 1;
		policies.policyFor("broken");
		expect(warned).toHaveLength(2);
		expect(warned[1]![1]).toEqual({ suppressed: 2 });
	});

	it("a keyring record's label: true never makes its id a metric label (labels are fixed when the isolate starts)", () => {
		const log: Logger = { warn: () => {}, error: () => {}, info: () => {} };
		const records = new Map<string, Record<string, unknown>>([["labelled", { rpm: 5, label: true }]]);
		const policies = new LimitPolicies(read('{"*": {"rpm": 60}}').limits, { limitsFor: (id) => records.get(id) }, readEntry, log);
		expect(policies.policyFor("labelled")).toEqual({ rpm: 5, rpd: null, concurrent: null, label: "" });
	});

	it("ids like __proto__ are plain ids", () => {
		const { limits } = read('{"__proto__": {"rpm": 5}, "constructor": {"rpd": 7}}');
		expect(limits!.policyFor("__proto__")).toMatchObject({ rpm: 5 });
		expect(limits!.policyFor("constructor")).toMatchObject({ rpd: 7 });
		expect(limits!.policyFor("toString")).toBeNull();
	});

	const REFUSED: [string, string, string][] = [
		["not JSON", '{"*": {"rpm": 60}', "CLIENT_LIMITS is not valid JSON"],
		["an array", '[{"rpm": 60}]', 'CLIENT_LIMITS must be a JSON object of "*" or a client id to limits'],
		["a number", "60", 'CLIENT_LIMITS must be a JSON object of "*" or a client id to limits'],
		["an id twice", '{"svc": {"rpm": 1}, "svc": {"rpm": 2}}', "CLIENT_LIMITS names the same client id twice"],
		["a field twice in one entry (JSON.parse keeps the last)", '{"svc": {"rpm": 1, "rpm": 2}}', "CLIENT_LIMITS names a field twice in one entry"],
		["a field twice in the default entry", '{"*": {"daily_tokens": 10, "token_hold": 5, "daily_tokens": 1000000}}', "CLIENT_LIMITS names a field twice in one entry"],
		["an id outside the grammar", '{"bad id!": {"rpm": 1}}', "CLIENT_LIMITS has a client id outside the client id grammar"],
		["an entry that is a number", '{"svc": 60}', "CLIENT_LIMITS must map each id to an object of limits"],
		["an unknown field", '{"svc": {"rpm": 1, "burst": 2}}', "CLIENT_LIMITS has an entry with a field other than rpm, rpd, concurrent, daily_tokens, monthly_tokens, token_hold and label"],
		["a token field misspelt", '{"svc": {"daily_token": 5000}}', "CLIENT_LIMITS has an entry with a field other than rpm, rpd, concurrent, daily_tokens, monthly_tokens, token_hold and label"],
		["a zero budget", '{"svc": {"daily_tokens": 0}}', "CLIENT_LIMITS must give daily_tokens as a whole number from 1 to 1000000000000000"],
		["a budget as a string", '{"svc": {"monthly_tokens": "5000"}}', "CLIENT_LIMITS must give monthly_tokens as a whole number from 1 to 1000000000000000"],
		["a budget over the hard bound", '{"*": {"monthly_tokens": 1000000000000001}}', "CLIENT_LIMITS must give monthly_tokens as a whole number from 1 to 1000000000000000"],
		["a fractional hold", '{"svc": {"daily_tokens": 5000, "token_hold": 2.5}}', "CLIENT_LIMITS must give token_hold as a whole number from 1 to 1000000000"],
		["a zero hold", '{"svc": {"daily_tokens": 5000, "token_hold": 0}}', "CLIENT_LIMITS must give token_hold as a whole number from 1 to 1000000000"],
		["a hold and no budget", '{"svc": {"rpm": 5, "token_hold": 512}}', "CLIENT_LIMITS has a token_hold without daily_tokens or monthly_tokens"],
		["a zero", '{"svc": {"rpm": 0}}', "CLIENT_LIMITS must give rpm as a whole number from 1 to 1000000"],
		["a fraction", '{"svc": {"rpd": 1.5}}', "CLIENT_LIMITS must give rpd as a whole number from 1 to 1000000000"],
		["a string", '{"svc": {"concurrent": "4"}}', "CLIENT_LIMITS must give concurrent as a whole number from 1 to 100000"],
		["a negative", '{"*": {"rpm": -5}}', "CLIENT_LIMITS must give rpm as a whole number from 1 to 1000000"],
		["over the hard bound", '{"*": {"rpm": 1000001}}', "CLIENT_LIMITS must give rpm as a whole number from 1 to 1000000"],
		["a label that is not a boolean", '{"svc": {"rpm": 1, "label": "yes"}}', "CLIENT_LIMITS has a label that is not true or false"],
		["a label on the default", '{"*": {"rpm": 1, "label": true}}', 'CLIENT_LIMITS cannot label the "*" entry: only listed client ids become labels'],
	];

	describe.each(["production", "development"])("ENVIRONMENT=%s refuses", (environment) => {
		it.each(REFUSED)("%s, naming the variable, never the value", (_, value, problem) => {
			const problems = problemsOf({ ...BASE, ENVIRONMENT: environment, CLIENT_LIMITS: value });
			expect(problems).toEqual([problem]);
			expect(problems.join(" ")).not.toContain("svc");
			expect(problems.join(" ")).not.toContain("bad id");
		});
	});

	it("a value that is not a string (a binding of another type)", () => {
		expect(read(42).problems).toEqual(["CLIENT_LIMITS must be a string"]);
	});

	const STRICT: [string, string, string][] = [
		["an rpm over 10000", '{"svc": {"rpm": 10001}}', "CLIENT_LIMITS has an rpm over 10000"],
		["a concurrent over 1000", '{"*": {"concurrent": 1001}}', "CLIENT_LIMITS has a concurrent over 1000"],
		["a token_hold over 1000000", '{"svc": {"rpm": 5}, "big": {"daily_tokens": 9000000, "token_hold": 1000001}}', "CLIENT_LIMITS has a token_hold over 1000000"],
		[
			"more than 50 labelled clients",
			JSON.stringify(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, { rpm: 1, label: true }]))),
			"CLIENT_LIMITS lists more than 50 clients as labels",
		],
	];

	it.each(STRICT)("production refuses %s; development takes it with a warning", (_, value, problem) => {
		expect(problemsOf({ ...BASE, CLIENT_LIMITS: value })).toEqual([problem]);
		const config = loadConfig({ ...BASE, ENVIRONMENT: "development", CLIENT_LIMITS: value });
		expect(config.warnings).toEqual([`${problem} (refused in production)`]);
		expect(config.limits).not.toBeNull();
	});

	it("takes the production bounds themselves", () => {
		const labelled = Object.fromEntries(
			Array.from({ length: 50 }, (_, i) => [`c${i}`, { rpm: 10_000, concurrent: 1_000, daily_tokens: 1e15, monthly_tokens: 1e15, token_hold: 1_000_000, label: true }]),
		);
		const config = loadConfig({ ...BASE, CLIENT_LIMITS: JSON.stringify(labelled) });
		expect(config.warnings).toEqual([]);
		expect(config.limits!.labelledClients).toHaveLength(50);
	});

	it("production warns of BUDGET_FAIL_MODE=memory (per-isolate budgets are inexact), with or without CLIENT_LIMITS", () => {
		const warning = "BUDGET_FAIL_MODE=memory: while Upstash fails, each isolate keeps token budgets alone, so a client can spend its budget once in every isolate";
		expect(loadConfig({ ...BASE, BUDGET_FAIL_MODE: "memory" }).warnings).toEqual([warning]);
		expect(loadConfig({ ...BASE, BUDGET_FAIL_MODE: "memory", CLIENT_LIMITS: '{"*": {"daily_tokens": 9}}' }).warnings).toEqual([warning]);
		expect(loadConfig({ ...BASE, BUDGET_FAIL_MODE: "closed", CLIENT_LIMITS: '{"*": {"daily_tokens": 9}}' }).warnings).toEqual([]);
		expect(problemsOf({ ...BASE, BUDGET_FAIL_MODE: "open" })).toEqual(["BUDGET_FAIL_MODE must be closed or memory"]);
	});

	it("production warns when limits are enforced per isolate, or a shared secret lets a caller pick its client id", () => {
		const limits = '{"*": {"rpm": 60}}';
		expect(loadConfig({ ...BASE, CLIENT_LIMITS: limits }).warnings).toEqual([]);
		expect(loadConfig({ ...BASE, CLIENT_LIMITS: limits, UPSTASH_REDIS_REST_URL: "disabled" }).warnings).toContain(
			"CLIENT_LIMITS is enforced per isolate (no Upstash): a client gets its limits once in every isolate",
		);
		expect(loadConfig({ ...BASE, CLIENT_LIMITS: limits, HMAC_SECRET: "a-shared-secret-of-32-characters!" }).warnings).toEqual([
			"CLIENT_LIMITS with a shared HMAC_SECRET: v1 does not sign X-Client-Id, so a holder of the shared secret is limited per client id it sends, not as one caller",
		]);
	});
});
