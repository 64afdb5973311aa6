import type { Env } from "./env.ts";
import { readAuth, type AuthConfig } from "./config/auth.ts";
import { readKeyring, type KeyringConfig } from "./config/keyring.ts";
import { readMetrics, type MetricsConfig } from "./config/metrics.ts";
import { readOrigin, type OriginConfig } from "./config/origin.ts";
import { SettingReader } from "./config/reader.ts";
import { readReplay, type ReplayConfig } from "./config/replay.ts";
import { limitsWarnings, readLimits } from "./limits/config.ts";
import type { ClientLimits } from "./limits/policy.ts";

export { PRODUCTION_LIMITS } from "./config/auth.ts";
export type { AuthConfig, KeyringConfig, MetricsConfig, OriginConfig, ReplayConfig };
export type { BudgetFailMode, ReplayFailMode } from "./config/replay.ts";

/**
 * Every setting of the gateway, read once per isolate from `env` and validated
 * (docs/design.md, "Configuration"). Each section has its reader in `src/config/`: a new
 * setting is its `Env` entry, a field and a line in its section's reader; a new section is a
 * reader of its own and one line in `loadConfig()`.
 */
export interface Config {
	/** `production` when `ENVIRONMENT` is unset. */
	environment: string;
	/** True unless `ENVIRONMENT` is exactly `development` or `test` (`Production`, `prod`, `staging`: production). */
	isProduction: boolean;
	/** `development` or `test`: a memory-only replay store is normal there, and degraded anywhere else. */
	isDevelopment: boolean;
	/** `X-Test-Mode` is honoured only when this is true (docs/design.md, "Test modes"). */
	testModesAllowed: boolean;
	origin: OriginConfig;
	auth: AuthConfig;
	replay: ReplayConfig;
	metrics: MetricsConfig;
	/** Per-client limits (`CLIENT_LIMITS`, src/limits/config.ts); null when unset: no limits, no cost. */
	limits: ClientLimits | null;
	/** The keyring in KV (`KEYRING_*`); off without `KEYRING_KEY`. */
	keyring: KeyringConfig;
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

/** Reads and validates every setting; throws one `ConfigError` listing all problems. */
export function loadConfig(env: Env): Config {
	const read = new SettingReader(env);
	const config: Config = {
		environment: read.environment,
		isProduction: read.isProduction,
		isDevelopment: !read.isProduction,
		testModesAllowed: read.flag("ALLOW_TEST_STUBS") || !read.isProduction,
		// The order in which problems are listed: where requests go, then how they are checked.
		origin: readOrigin(read),
		auth: readAuth(read),
		replay: readReplay(read),
		metrics: readMetrics(read),
		limits: readLimits(read),
		keyring: readKeyring(read, env.KEYRING !== undefined && env.KEYRING !== null),
		warnings: read.warnings,
	};
	if (read.problems.length > 0) throw new ConfigError(read.problems);
	if (config.isProduction) read.warnings.push(...productionWarnings(config), ...limitsWarnings(config));
	return config;
}

/** What production runs with but should not: one sentence each. */
function productionWarnings(config: Config): string[] {
	const warnings: string[] = [];
	if (config.auth.sharedSecrets.length === 0 && config.auth.clientSecrets.size === 0 && config.keyring.key === null) {
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
