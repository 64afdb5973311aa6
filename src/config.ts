import type { Env } from "./env.ts";
import { CLIENT_ID_PATTERN } from "./auth/grammar.ts";
import { DEFAULT_SIGNATURE_SCHEMES, parseSignatureSchemes } from "./auth/schemes.ts";
import type { SignatureScheme } from "./events.ts";
import { limitsWarnings, readClientLimits } from "./limits/config.ts";
import type { ClientLimits } from "./limits/policy.ts";

export type ReplayFailMode = "memory" | "closed";

/** Every setting of the gateway, read once per isolate from `env` and validated. */
export interface Config {
	/** `production` when `ENVIRONMENT` is unset. */
	environment: string;
	/** True unless `ENVIRONMENT` is exactly `development` or `test` (`Production`, `prod`, `staging`: production). */
	isProduction: boolean;
	/** `development` or `test`: a memory-only replay store is normal there, and degraded anywhere else. */
	isDevelopment: boolean;
	/** `X-Test-Mode` is honoured only when this is true (SPEC section 5). */
	testModesAllowed: boolean;
	auth: {
		/** Secrets for any client, newest first (`HMAC_SECRET`, or its alias). */
		sharedSecrets: readonly string[];
		/** Per-client secrets, newest first (`HMAC_CLIENTS`). */
		clientSecrets: ReadonlyMap<string, readonly string[]>;
		maxSkewMs: number;
		maxBodyBytes: number;
		/** The signature schemes accepted (`SIGNATURE_SCHEMES`, default `v1,v2`). */
		schemes: readonly SignatureScheme[];
	};
	replay: {
		/** Null when Upstash is not configured or is `disabled`: the memory store is used. */
		upstash: { url: string; token: string } | null;
		/** True when `UPSTASH_REDIS_REST_URL=disabled` (the rollback switch). */
		upstashDisabled: boolean;
		prefix: string;
		ttlSeconds: number;
		timeoutMs: number;
		failMode: ReplayFailMode;
		breakerFailures: number;
		breakerCooldownMs: number;
		memoryMaxKeys: number;
	};
	origin: {
		/** Without a trailing slash; the request path is appended by string concatenation. */
		url: string;
		token: string | null;
		timeoutMs: number;
		idleMs: number;
	};
	/** Per-client limits (`CLIENT_LIMITS`, src/limits/config.ts); null when unset: no limits, no cost. */
	limits: ClientLimits | null;
	metrics: {
		/** Accepted bearer tokens for `/metrics` and `/healthz` details; empty means open. */
		tokens: readonly string[];
		flushMs: number;
		timeoutMs: number;
		shards: number;
	};
	/**
	 * What weakens this configuration, one sentence each (never a value): in production, what
	 * is missing; in development and test, each production refusal it was allowed. The Worker
	 * logs them once per isolate; `npm run check-config` prints them.
	 */
	warnings: readonly string[];
}

/**
 * A setting that cannot be used. The message names the variable and the kind of
 * fault, never the value (it may be a secret) nor a parser message (it may quote one).
 */
export class ConfigError extends Error {
	override readonly name = "ConfigError";
	readonly problems: readonly string[];

	constructor(problems: readonly string[]) {
		super(`invalid configuration: ${problems.join("; ")}`);
		this.problems = problems;
	}
}

const MAX_SECRETS_PER_LIST = 3;
/** The hard bound of a client's list in `HMAC_CLIENTS`, in every environment. */
const MAX_SECRETS_PER_CLIENT = 8;
const TEST_ENVIRONMENTS = new Set(["development", "test"]);
/** Production's limits (SPEC section 7); development and test take more, with a warning. */
export const PRODUCTION_LIMITS = {
	minSecretLength: 32,
	maxSecretsPerList: MAX_SECRETS_PER_LIST,
	maxSkewMs: 3_600_000,
	maxBodyBytes: 33_554_432,
} as const;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** Reads and validates every setting; throws one `ConfigError` listing all problems. */
export function loadConfig(env: Env): Config {
	const problems: string[] = [];
	const read = new SettingReader(env, problems);

	// Exactly `development` or `test` relaxes the rules; anything else gets production's.
	const environment = read.string("ENVIRONMENT") ?? "production";
	const isProduction = !TEST_ENVIRONMENTS.has(environment);
	const warnings: string[] = [];
	/** A production refusal: an error in production, a warning elsewhere. */
	const strict = (problem: string) => {
		if (isProduction) problems.push(problem);
		else warnings.push(`${problem} (refused in production)`);
	};
	const allowStubs = read.flag("ALLOW_TEST_STUBS");

	// A whitespace-only HMAC_SECRET counts as unset, so it does not hide the alias.
	const secretName = read.string("HMAC_SECRET") !== undefined ? "HMAC_SECRET" : "E2E_SESSION_HMAC_SECRET";
	const sharedSecrets = read.secretList(secretName);
	if (sharedSecrets.length > MAX_SECRETS_PER_LIST) strict(`${secretName} lists more than ${MAX_SECRETS_PER_LIST} secrets`);
	if (sharedSecrets.some((secret) => secret.length < PRODUCTION_LIMITS.minSecretLength)) {
		strict(`${secretName} has a secret shorter than ${PRODUCTION_LIMITS.minSecretLength} characters`);
	}
	const clientSecrets = read.clients("HMAC_CLIENTS");
	const clientLists = [...clientSecrets.values()];
	if (clientLists.some((list) => list.length > MAX_SECRETS_PER_LIST)) {
		strict(`HMAC_CLIENTS lists more than ${MAX_SECRETS_PER_LIST} secrets for a client`);
	}
	if (clientLists.some((list) => list.some((secret) => secret.length < PRODUCTION_LIMITS.minSecretLength))) {
		strict(`HMAC_CLIENTS has a secret shorter than ${PRODUCTION_LIMITS.minSecretLength} characters`);
	}

	const upstashUrl = read.string("UPSTASH_REDIS_REST_URL");
	const upstashToken = read.string("UPSTASH_REDIS_REST_TOKEN");
	const upstashDisabled = upstashUrl === "disabled";
	let upstash: Config["replay"]["upstash"] = null;
	if (upstashUrl !== undefined && !upstashDisabled) {
		if (!isHttpUrl(upstashUrl)) problems.push("UPSTASH_REDIS_REST_URL is not an http(s) URL");
		else if (upstashToken === undefined) problems.push("UPSTASH_REDIS_REST_TOKEN is required when UPSTASH_REDIS_REST_URL is set");
		else upstash = { url: upstashUrl, token: upstashToken };
		if (isPlainHttpBeyondLoopback(upstashUrl)) strict("UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback");
	}

	const failMode = read.string("REPLAY_FAIL_MODE") ?? "memory";
	if (failMode !== "memory" && failMode !== "closed") problems.push("REPLAY_FAIL_MODE must be memory or closed");

	const originUrl = read.string("ORIGIN_URL");
	if (originUrl === undefined) problems.push("ORIGIN_URL is required");
	else if (!isHttpUrl(originUrl)) problems.push("ORIGIN_URL is not an http(s) URL");
	else if (/[?#]/.test(originUrl)) problems.push("ORIGIN_URL must not have a query or fragment");
	else if (isPlainHttpBeyondLoopback(originUrl)) strict("ORIGIN_URL is plain http on a host that is not loopback");

	const schemes = parseSignatureSchemes(read.string("SIGNATURE_SCHEMES"));
	if (schemes === null) problems.push("SIGNATURE_SCHEMES must be v1, v2 or v1,v2");

	const limits = readClientLimits(env.CLIENT_LIMITS, { problem: (problem) => problems.push(problem), strict });
	const metricsFlushMs = read.integer("METRICS_FLUSH_MS", 10_000, { min: 100, max: 25_000 });
	const maxSkewMs = read.integer("HMAC_MAX_SKEW_MS", 300_000, { min: 1 });
	if (maxSkewMs > PRODUCTION_LIMITS.maxSkewMs) strict(`HMAC_MAX_SKEW_MS is over ${PRODUCTION_LIMITS.maxSkewMs}`);
	const maxBodyBytes = read.integer("MAX_BODY_BYTES", 1_048_576, { min: 1, max: 100 * 1_048_576 });
	if (maxBodyBytes > PRODUCTION_LIMITS.maxBodyBytes) strict(`MAX_BODY_BYTES is over ${PRODUCTION_LIMITS.maxBodyBytes}`);

	const config: Config = {
		environment,
		isProduction,
		isDevelopment: !isProduction,
		testModesAllowed: allowStubs || !isProduction,
		auth: {
			sharedSecrets,
			clientSecrets,
			maxSkewMs,
			maxBodyBytes,
			schemes: schemes ?? DEFAULT_SIGNATURE_SCHEMES,
		},
		replay: {
			upstash,
			upstashDisabled,
			prefix: read.string("REDIS_REPLAY_PREFIX") ?? "hmac:replay:",
			ttlSeconds: read.integer("REDIS_REPLAY_TTL", 300, { min: 1 }),
			timeoutMs: read.integer("REPLAY_TIMEOUT_MS", 200, { min: 1, max: 30_000 }),
			failMode: failMode as ReplayFailMode,
			breakerFailures: read.integer("REPLAY_BREAKER_FAILURES", 3, { min: 1 }),
			breakerCooldownMs: read.integer("REPLAY_BREAKER_COOLDOWN_MS", 5_000, { min: 1 }),
			memoryMaxKeys: read.integer("REPLAY_MEMORY_MAX_KEYS", 100_000, { min: 1 }),
		},
		origin: {
			url: (originUrl ?? "").replace(/\/+$/, ""),
			token: read.string("ORIGIN_TOKEN") ?? null,
			timeoutMs: read.integer("ORIGIN_TIMEOUT_MS", 60_000, { min: 1 }),
			idleMs: read.integer("ORIGIN_IDLE_MS", 30_000, { min: 1 }),
		},
		limits,
		metrics: {
			tokens: read.secretList("METRICS_TOKEN"),
			flushMs: metricsFlushMs,
			timeoutMs: read.integer("METRICS_TIMEOUT_MS", 1_000, { min: 1, max: 30_000 }),
			shards: read.integer("METRICS_SHARDS", 1, { min: 1, max: 64 }),
		},
		warnings,
	};
	if (problems.length > 0) throw new ConfigError(problems);
	if (isProduction) warnings.push(...productionWarnings(config), ...limitsWarnings(config));
	return config;
}

/** What production runs with but should not: one sentence each. */
function productionWarnings(config: Config): string[] {
	const warnings: string[] = [];
	if (config.auth.sharedSecrets.length === 0 && config.auth.clientSecrets.size === 0) {
		warnings.push("no HMAC secret (HMAC_SECRET or HMAC_CLIENTS): every signed request gets 500 config_error");
	}
	if (config.metrics.tokens.length === 0) {
		warnings.push("METRICS_TOKEN is not set: it is required in production, and /metrics answers 500 config_error without it");
	}
	if (config.origin.token === null) {
		warnings.push("ORIGIN_TOKEN is not set: the origin cannot tell gateway traffic from direct calls");
	}
	if (config.replay.upstash === null) {
		const why = config.replay.upstashDisabled ? "UPSTASH_REDIS_REST_URL is disabled" : "no Upstash is configured";
		warnings.push(`replay protection uses isolate memory only (${why}): a request can be replayed through another isolate`);
	}
	return warnings;
}

function isHttpUrl(value: string): boolean {
	if (!/^https?:\/\//i.test(value)) return false;
	return URL.canParse(value);
}

/** A plain `http://` URL whose host is not loopback (`127.0.0.1`, `::1`, `localhost`). */
function isPlainHttpBeyondLoopback(value: string): boolean {
	if (!/^http:\/\//i.test(value) || !URL.canParse(value)) return false;
	return !LOOPBACK_HOSTS.has(new URL(value).hostname);
}

/**
 * The member names of a JSON object's top level, in order, duplicates kept (`JSON.parse`
 * keeps only the last of two equal names). `text` must already parse as a JSON object.
 */
function topLevelKeys(text: string): string[] {
	const keys: string[] = [];
	let depth = 0;
	let expectingKey = false;
	for (let i = 0; i < text.length; i++) {
		const char = text[i];
		if (char === '"') {
			let end = i + 1;
			while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
			if (depth === 1 && expectingKey) keys.push(JSON.parse(text.slice(i, end + 1)) as string);
			expectingKey = false;
			i = end;
		} else if (char === "{" || char === "[") {
			depth++;
			expectingKey = char === "{" && depth === 1;
		} else if (char === "}" || char === "]") {
			depth--;
		} else if (char === "," && depth === 1) {
			expectingKey = true;
		}
	}
	return keys;
}

/** Reads one kind of setting each; records a problem instead of throwing, so all are reported. */
class SettingReader {
	private readonly env: Env;
	private readonly problems: string[];

	constructor(env: Env, problems: string[]) {
		this.env = env;
		this.problems = problems;
	}

	private raw(name: keyof Env): string | undefined {
		const value = this.env[name];
		if (value === undefined || value === null) return undefined;
		if (typeof value !== "string") {
			this.problems.push(`${name} must be a string`);
			return undefined;
		}
		return value;
	}

	/** A trimmed string; an empty one counts as unset. */
	string(name: keyof Env): string | undefined {
		const value = this.raw(name)?.trim();
		return value === "" ? undefined : value;
	}

	flag(name: keyof Env): boolean {
		const value = this.string(name);
		if (value === undefined || value === "0" || value === "false") return false;
		if (value === "1" || value === "true") return true;
		this.problems.push(`${name} must be 1 or 0`);
		return false;
	}

	integer(name: keyof Env, fallback: number, range: { min: number; max?: number }): number {
		const value = this.string(name);
		if (value === undefined) return fallback;
		if (!/^[0-9]{1,15}$/.test(value)) {
			this.problems.push(`${name} is not a whole number`);
			return fallback;
		}
		const parsed = Number(value);
		if (parsed < range.min || (range.max !== undefined && parsed > range.max)) {
			const bound = range.max === undefined ? `at least ${range.min}` : `between ${range.min} and ${range.max}`;
			this.problems.push(`${name} must be ${bound}`);
			return fallback;
		}
		return parsed;
	}

	/** A comma-separated list of secrets, newest first. */
	secretList(name: keyof Env): string[] {
		const value = this.string(name);
		if (value === undefined) return [];
		const secrets = value.split(",").map((part) => part.trim());
		if (secrets.some((secret) => secret === "")) {
			this.problems.push(`${name} has an empty entry in its list`);
			return [];
		}
		if (new Set(secrets).size !== secrets.length) {
			this.problems.push(`${name} lists the same secret twice`);
			return [];
		}
		return secrets;
	}

	/** `{"client-id": "secret" | ["new", "old"]}` into a Map, so ids like `__proto__` are plain keys. */
	clients(name: keyof Env): Map<string, string[]> {
		const clients = new Map<string, string[]>();
		const value = this.string(name);
		if (value === undefined) return clients;
		let parsed: unknown;
		try {
			parsed = JSON.parse(value);
		} catch {
			this.problems.push(`${name} is not valid JSON`);
			return clients;
		}
		if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
			this.problems.push(`${name} must be a JSON object of client id to secret`);
			return clients;
		}
		const keys = topLevelKeys(value);
		if (new Set(keys).size !== keys.length) {
			this.problems.push(`${name} names the same client id twice`);
			return clients;
		}
		for (const [clientId, entry] of Object.entries(parsed)) {
			if (!CLIENT_ID_PATTERN.test(clientId)) {
				this.problems.push(`${name} has a client id outside the client id grammar`);
				continue;
			}
			const secrets = typeof entry === "string" ? [entry] : entry;
			if (
				!Array.isArray(secrets) ||
				secrets.length === 0 ||
				secrets.length > MAX_SECRETS_PER_CLIENT ||
				secrets.some((secret) => typeof secret !== "string" || secret === "")
			) {
				this.problems.push(
					`${name} must map each client id to a non-empty secret or a list of 1 to ${MAX_SECRETS_PER_CLIENT} secrets`,
				);
				continue;
			}
			clients.set(clientId, secrets as string[]);
		}
		return clients;
	}
}
