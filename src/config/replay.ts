import type { SettingReader } from "./reader.ts";
import { isHttpUrl, isPlainHttpBeyondLoopback } from "./urls.ts";

export type ReplayFailMode = "memory" | "closed";
/** What token budgets do while Upstash fails: refuse (503 `budget_unavailable`), or count per isolate (inexact). */
export type BudgetFailMode = "closed" | "memory";

export interface ReplayConfig {
	/** Null when Upstash is not configured or is `disabled`: the memory store is used. */
	upstash: { url: string; token: string } | null;
	/** True when `UPSTASH_REDIS_REST_URL=disabled` (the rollback switch). */
	upstashDisabled: boolean;
	/** `REDIS_REPLAY_PREFIX`, `hmac:replay:` when unset. */
	prefix: string;
	/** `REDIS_REPLAY_TTL`, 300 when unset. */
	ttlSeconds: number;
	/** `REPLAY_TIMEOUT_MS`, 200 when unset. */
	timeoutMs: number;
	/** `REPLAY_FAIL_MODE`, `memory` when unset. */
	failMode: ReplayFailMode;
	/** `BUDGET_FAIL_MODE`, `closed` when unset, whatever `REPLAY_FAIL_MODE` says (docs/design.md, "Token budgets"). */
	budgetFailMode: BudgetFailMode;
	/** `REPLAY_BREAKER_FAILURES`, 3 when unset. */
	breakerFailures: number;
	/** `REPLAY_BREAKER_COOLDOWN_MS`, 5000 when unset. */
	breakerCooldownMs: number;
	/** `REPLAY_MEMORY_MAX_KEYS`, 100000 when unset. */
	memoryMaxKeys: number;
}

/** The replay store's settings: Upstash, its budget and breaker, and the memory fallback. */
export function readReplay(read: SettingReader): ReplayConfig {
	const url = read.string("UPSTASH_REDIS_REST_URL");
	const token = read.string("UPSTASH_REDIS_REST_TOKEN");
	const upstashDisabled = url === "disabled";
	let upstash: ReplayConfig["upstash"] = null;
	if (url !== undefined && !upstashDisabled) {
		if (!isHttpUrl(url)) read.problem("UPSTASH_REDIS_REST_URL is not an http(s) URL");
		else if (token === undefined) read.problem("UPSTASH_REDIS_REST_TOKEN is required when UPSTASH_REDIS_REST_URL is set");
		else upstash = { url, token };
		if (isPlainHttpBeyondLoopback(url)) read.refuseInProduction("UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback");
	}
	return {
		upstash,
		upstashDisabled,
		prefix: read.string("REDIS_REPLAY_PREFIX") ?? "hmac:replay:",
		ttlSeconds: read.integer("REDIS_REPLAY_TTL", 300, { min: 1 }),
		timeoutMs: read.integer("REPLAY_TIMEOUT_MS", 200, { min: 1, max: 30_000 }),
		failMode: readFailMode(read),
		budgetFailMode: readBudgetFailMode(read),
		breakerFailures: read.integer("REPLAY_BREAKER_FAILURES", 3, { min: 1 }),
		breakerCooldownMs: read.integer("REPLAY_BREAKER_COOLDOWN_MS", 5_000, { min: 1 }),
		memoryMaxKeys: read.integer("REPLAY_MEMORY_MAX_KEYS", 100_000, { min: 1 }),
	};
}

function readFailMode(read: SettingReader): ReplayFailMode {
	const value = read.string("REPLAY_FAIL_MODE") ?? "memory";
	if (value === "memory" || value === "closed") return value;
	read.problem("REPLAY_FAIL_MODE must be memory or closed");
	return "memory";
}

function readBudgetFailMode(read: SettingReader): BudgetFailMode {
	const value = read.string("BUDGET_FAIL_MODE") ?? "closed";
	if (value === "closed" || value === "memory") return value;
	read.problem("BUDGET_FAIL_MODE must be closed or memory");
	return "closed";
}
