import type { Env } from "./env.ts";
import { CLIENT_ID_PATTERN } from "./auth/grammar.ts";
import { DEFAULT_SIGNATURE_SCHEMES, parseSignatureSchemes } from "./auth/schemes.ts";
import type { SignatureScheme } from "./events.ts";

export type ReplayFailMode = "memory" | "closed";

/** Every setting of the gateway, read once per isolate from `env` and validated. */
export interface Config {
	/** `production` when `ENVIRONMENT` is unset. */
	environment: string;
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
	metrics: {
		/** Accepted bearer tokens for `/metrics` and `/healthz` details; empty means open. */
		tokens: readonly string[];
		flushMs: number;
		timeoutMs: number;
		shards: number;
	};
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

const MAX_SECRETS_PER_CLIENT = 3;
const TEST_ENVIRONMENTS = new Set(["development", "test"]);

/** Reads and validates every setting; throws one `ConfigError` listing all problems. */
export function loadConfig(env: Env): Config {
	const problems: string[] = [];
	const read = new SettingReader(env, problems);

	const environment = read.string("ENVIRONMENT") ?? "production";
	const allowStubs = read.flag("ALLOW_TEST_STUBS");

	const sharedSecrets = read.secretList(
		env.HMAC_SECRET !== undefined && env.HMAC_SECRET !== "" ? "HMAC_SECRET" : "E2E_SESSION_HMAC_SECRET",
	);
	const clientSecrets = read.clients("HMAC_CLIENTS");

	const upstashUrl = read.string("UPSTASH_REDIS_REST_URL");
	const upstashToken = read.string("UPSTASH_REDIS_REST_TOKEN");
	const upstashDisabled = upstashUrl === "disabled";
	let upstash: Config["replay"]["upstash"] = null;
	if (upstashUrl !== undefined && !upstashDisabled) {
		if (!isHttpUrl(upstashUrl)) problems.push("UPSTASH_REDIS_REST_URL is not an http(s) URL");
		else if (upstashToken === undefined) problems.push("UPSTASH_REDIS_REST_TOKEN is required when UPSTASH_REDIS_REST_URL is set");
		else upstash = { url: upstashUrl, token: upstashToken };
	}

	const failMode = read.string("REPLAY_FAIL_MODE") ?? "memory";
	if (failMode !== "memory" && failMode !== "closed") problems.push("REPLAY_FAIL_MODE must be memory or closed");

	const originUrl = read.string("ORIGIN_URL");
	if (originUrl === undefined) problems.push("ORIGIN_URL is required");
	else if (!isHttpUrl(originUrl)) problems.push("ORIGIN_URL is not an http(s) URL");
	else if (/[?#]/.test(originUrl)) problems.push("ORIGIN_URL must not have a query or fragment");

	const schemes = parseSignatureSchemes(read.string("SIGNATURE_SCHEMES"));
	if (schemes === null) problems.push("SIGNATURE_SCHEMES must be v1, v2 or v1,v2");

	const metricsFlushMs = read.integer("METRICS_FLUSH_MS", 10_000, { min: 100, max: 25_000 });

	const config: Config = {
		environment,
		isProduction: environment === "production",
		isDevelopment: TEST_ENVIRONMENTS.has(environment),
		testModesAllowed: allowStubs || TEST_ENVIRONMENTS.has(environment),
		auth: {
			sharedSecrets,
			clientSecrets,
			maxSkewMs: read.integer("HMAC_MAX_SKEW_MS", 300_000, { min: 1 }),
			maxBodyBytes: read.integer("MAX_BODY_BYTES", 1_048_576, { min: 1, max: 100 * 1_048_576 }),
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
		metrics: {
			tokens: read.secretList("METRICS_TOKEN"),
			flushMs: metricsFlushMs,
			timeoutMs: read.integer("METRICS_TIMEOUT_MS", 1_000, { min: 1, max: 30_000 }),
			shards: read.integer("METRICS_SHARDS", 1, { min: 1, max: 64 }),
		},
	};
	if (problems.length > 0) throw new ConfigError(problems);
	return config;
}

function isHttpUrl(value: string): boolean {
	if (!/^https?:\/\//i.test(value)) return false;
	return URL.canParse(value);
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
