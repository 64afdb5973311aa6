import { CLIENT_ID_PATTERN } from "../auth/grammar.ts";
import type { AuthConfig } from "../config/auth.ts";
import type { ReplayConfig } from "../config/replay.ts";
import { repeatsAName, topLevelKeys } from "../json-keys.ts";
import type { SettingReader } from "../config/reader.ts";
import { ClientLimits, DEFAULT_TOKEN_HOLD, type LimitPolicy, type TokenBudget } from "./policy.ts";

/** The variable this file reads. */
export const CLIENT_LIMITS = "CLIENT_LIMITS";

/**
 * Hard bounds in every environment: beyond them a value is a typo, not a plan. Token amounts stay
 * below 2^53 with every hold added, so the Lua script's numbers count them exactly.
 */
const MAX_VALUE = {
	rpm: 1_000_000,
	rpd: 1_000_000_000,
	concurrent: 100_000,
	daily_tokens: 1_000_000_000_000_000,
	monthly_tokens: 1_000_000_000_000_000,
	token_hold: 1_000_000_000,
} as const;
/**
 * Production's bounds; development and test take more, with a warning. The `rpm` window keeps
 * one entry per accepted request in Redis, each listed label is a series per limit, and no one
 * request spends a million tokens (the largest context windows hold about that).
 */
export const LIMITS_PRODUCTION_BOUNDS = { rpm: 10_000, concurrent: 1_000, tokenHold: 1_000_000, labelledClients: 50 } as const;
const FIELDS = new Set(["rpm", "rpd", "concurrent", "daily_tokens", "monthly_tokens", "token_hold", "label"]);

/**
 * Where `readClientLimits` reports: `problem` refuses the configuration everywhere, `strict`
 * only in production (a warning elsewhere). Messages name the variable and the fault, never a value.
 */
export interface LimitsProblems {
	problem(message: string): void;
	strict(message: string): void;
}

/** `loadConfig()`'s reader of `CLIENT_LIMITS`: refusals as problems, production's as production refusals. */
export function readLimits(read: SettingReader): ClientLimits | null {
	return readClientLimits(read.string(CLIENT_LIMITS), {
		problem: (message) => read.problem(message),
		strict: (message) => read.refuseInProduction(message),
	});
}

/**
 * Reads `CLIENT_LIMITS`: `{"*": {...}, "<client id>": {...}}`, each entry any of `rpm`, `rpd`,
 * `concurrent`, the token budget's `daily_tokens`, `monthly_tokens` and `token_hold` (positive
 * whole numbers) and `label` (true: the id becomes a metric label). Unset or blank: null (no
 * limits, no cost).
 *
 * @example
 * ```ts
 * const limits = readClientLimits('{"*": {"rpm": 60}, "batch": {"rpd": 5000, "label": true}}', problems);
 * limits?.policyFor("batch"); // { rpm: null, rpd: 5000, concurrent: null, label: "batch" }
 * ```
 */
export function readClientLimits(raw: unknown, problems: LimitsProblems): ClientLimits | null {
	if (raw === undefined || raw === null) return null;
	if (typeof raw !== "string") {
		problems.problem(`${CLIENT_LIMITS} must be a string`);
		return null;
	}
	const text = raw.trim();
	if (text === "") return null;
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		// Never the parser's message: it can quote the value.
		problems.problem(`${CLIENT_LIMITS} is not valid JSON`);
		return null;
	}
	if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
		problems.problem(`${CLIENT_LIMITS} must be a JSON object of "*" or a client id to limits`);
		return null;
	}
	const ids = topLevelKeys(text);
	if (new Set(ids).size !== ids.length) {
		problems.problem(`${CLIENT_LIMITS} names the same client id twice`);
		return null;
	}
	// JSON.parse would keep the last of `{"rpm": 1, "rpm": 2}` without a word.
	if (repeatsAName(text)) {
		problems.problem(`${CLIENT_LIMITS} names a field twice in one entry`);
		return null;
	}
	const entries = new Map<string, LimitPolicy>();
	let failed = false;
	for (const [id, entry] of Object.entries(parsed)) {
		if (id !== "*" && !CLIENT_ID_PATTERN.test(id)) {
			problems.problem(`${CLIENT_LIMITS} has a client id outside the client id grammar`);
			failed = true;
			continue;
		}
		const policy = readEntry(id, entry, problems);
		if (policy === null) failed = true;
		else entries.set(id, policy);
	}
	if (failed) return null;
	const limits = new ClientLimits(entries);
	for (const policy of entries.values()) {
		if ((policy.rpm ?? 0) > LIMITS_PRODUCTION_BOUNDS.rpm) {
			problems.strict(`${CLIENT_LIMITS} has an rpm over ${LIMITS_PRODUCTION_BOUNDS.rpm}`);
			break;
		}
	}
	for (const policy of entries.values()) {
		if ((policy.concurrent ?? 0) > LIMITS_PRODUCTION_BOUNDS.concurrent) {
			problems.strict(`${CLIENT_LIMITS} has a concurrent over ${LIMITS_PRODUCTION_BOUNDS.concurrent}`);
			break;
		}
	}
	for (const policy of entries.values()) {
		if ((policy.budget?.hold ?? 0) > LIMITS_PRODUCTION_BOUNDS.tokenHold) {
			problems.strict(`${CLIENT_LIMITS} has a token_hold over ${LIMITS_PRODUCTION_BOUNDS.tokenHold}`);
			break;
		}
	}
	if (limits.labelledClients.length > LIMITS_PRODUCTION_BOUNDS.labelledClients) {
		problems.strict(`${CLIENT_LIMITS} lists more than ${LIMITS_PRODUCTION_BOUNDS.labelledClients} clients as labels`);
	}
	return limits;
}

/** What production runs with but weakens the limits: one sentence each, never a value. */
export function limitsWarnings(config: { limits: unknown; replay: Pick<ReplayConfig, "upstash" | "budgetFailMode">; auth: Pick<AuthConfig, "sharedSecrets"> }): string[] {
	const warnings: string[] = [];
	// Keyring records may carry budgets without CLIENT_LIMITS: the opt-in is worth a line either way.
	if (config.replay.budgetFailMode === "memory") {
		warnings.push("BUDGET_FAIL_MODE=memory: while Upstash fails, each isolate keeps token budgets alone, so a client can spend its budget once in every isolate");
	}
	if (config.limits === null) return warnings;
	if (config.replay.upstash === null) {
		warnings.push(`${CLIENT_LIMITS} is enforced per isolate (no Upstash): a client gets its limits once in every isolate`);
	}
	if (config.auth.sharedSecrets.length > 0) {
		warnings.push(
			`${CLIENT_LIMITS} with a shared HMAC_SECRET: v1 does not sign X-Client-Id, so a holder of the shared secret is limited per client id it sends, not as one caller`,
		);
	}
	return warnings;
}

/** One entry (`{"rpm": 60, ...}`) with `CLIENT_LIMITS`'s rules: its policy, or null and the problem reported. */
export function readEntry(id: string, entry: unknown, problems: LimitsProblems): LimitPolicy | null {
	if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
		problems.problem(`${CLIENT_LIMITS} must map each id to an object of limits`);
		return null;
	}
	const fields = entry as Record<string, unknown>;
	if (Object.keys(fields).some((field) => !FIELDS.has(field))) {
		problems.problem(`${CLIENT_LIMITS} has an entry with a field other than rpm, rpd, concurrent, daily_tokens, monthly_tokens, token_hold and label`);
		return null;
	}
	const rpm = limitValue(fields.rpm, "rpm", problems);
	const rpd = limitValue(fields.rpd, "rpd", problems);
	const concurrent = limitValue(fields.concurrent, "concurrent", problems);
	const budget = readBudget(fields, problems);
	if (rpm === false || rpd === false || concurrent === false || budget === false) return null;
	if (fields.label !== undefined && typeof fields.label !== "boolean") {
		problems.problem(`${CLIENT_LIMITS} has a label that is not true or false`);
		return null;
	}
	if (fields.label === true && id === "*") {
		// Every caller's id would become a label: series made from caller input, without bound.
		problems.problem(`${CLIENT_LIMITS} cannot label the "*" entry: only listed client ids become labels`);
		return null;
	}
	const policy = { rpm, rpd, concurrent, label: fields.label === true ? id : "" };
	return budget === null ? policy : { ...policy, budget };
}

/**
 * The token budget of an entry (docs/design.md, "Token budgets"): null without `daily_tokens` and
 * `monthly_tokens`, false when refused. A `token_hold` alone limits nothing: refused as a mistake.
 */
function readBudget(fields: Record<string, unknown>, problems: LimitsProblems): TokenBudget | null | false {
	const daily = limitValue(fields.daily_tokens, "daily_tokens", problems);
	const monthly = limitValue(fields.monthly_tokens, "monthly_tokens", problems);
	const hold = limitValue(fields.token_hold, "token_hold", problems);
	if (daily === false || monthly === false || hold === false) return false;
	if (daily === null && monthly === null) {
		if (hold === null) return null;
		problems.problem(`${CLIENT_LIMITS} has a token_hold without daily_tokens or monthly_tokens`);
		return false;
	}
	return { daily, monthly, hold: hold ?? DEFAULT_TOKEN_HOLD };
}

/** A positive whole number up to the field's hard bound, null when absent, false when refused. */
function limitValue(value: unknown, field: keyof typeof MAX_VALUE, problems: LimitsProblems): number | null | false {
	if (value === undefined) return null;
	if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_VALUE[field]) {
		problems.problem(`${CLIENT_LIMITS} must give ${field} as a whole number from 1 to ${MAX_VALUE[field]}`);
		return false;
	}
	return value;
}

/** The fields an entry may have, in the order the rules name them (the keys CLI's help lists them). */
export const LIMIT_FIELDS: readonly string[] = [...FIELDS];
