import type { Env } from "../env.ts";

/** The names of the settings: every binding of `Env` that arrives as a string. */
export type SettingName = { [Name in keyof Env]-?: Env[Name] extends string | undefined ? Name : never }[keyof Env];

const TEST_ENVIRONMENTS = new Set(["development", "test"]);

/**
 * Reads one setting at a time and records what is wrong with it instead of throwing, so
 * `loadConfig()` reports every problem at once. It knows the environment first, because
 * that decides whether a production refusal is a problem or a warning.
 */
export class SettingReader {
	/** Settings that cannot be used: each names the variable and the fault, never the value. */
	readonly problems: string[] = [];
	/** What weakens the configuration without making it unusable. */
	readonly warnings: string[] = [];
	/** `production` when `ENVIRONMENT` is unset. */
	readonly environment: string;
	/** Exactly `development` or `test` relaxes the rules; anything else gets production's. */
	readonly isProduction: boolean;
	private readonly env: Env;

	constructor(env: Env) {
		this.env = env;
		this.environment = this.string("ENVIRONMENT") ?? "production";
		this.isProduction = !TEST_ENVIRONMENTS.has(this.environment);
	}

	/** A setting that cannot be used, in every environment. */
	problem(problem: string): void {
		this.problems.push(problem);
	}

	/** A production refusal: a problem in production, a warning in development and test. */
	refuseInProduction(problem: string): void {
		if (this.isProduction) this.problems.push(problem);
		else this.warnings.push(`${problem} (refused in production)`);
	}

	/** A trimmed string; an empty one counts as unset. */
	string(name: SettingName): string | undefined {
		const value: unknown = this.env[name];
		if (value === undefined || value === null) return undefined;
		if (typeof value !== "string") {
			this.problem(`${name} must be a string`);
			return undefined;
		}
		const trimmed = value.trim();
		return trimmed === "" ? undefined : trimmed;
	}

	flag(name: SettingName): boolean {
		const value = this.string(name);
		if (value === undefined || value === "0" || value === "false") return false;
		if (value === "1" || value === "true") return true;
		this.problem(`${name} must be 1 or 0`);
		return false;
	}

	/** A whole number within `range`, or `fallback` when unset (and after a recorded problem). */
	integer(name: SettingName, fallback: number, range: { min: number; max?: number }): number {
		const value = this.string(name);
		if (value === undefined) return fallback;
		if (!/^[0-9]{1,15}$/.test(value)) {
			this.problem(`${name} is not a whole number`);
			return fallback;
		}
		const parsed = Number(value);
		if (parsed < range.min || (range.max !== undefined && parsed > range.max)) {
			const bound = range.max === undefined ? `at least ${range.min}` : `between ${range.min} and ${range.max}`;
			this.problem(`${name} must be ${bound}`);
			return fallback;
		}
		return parsed;
	}

	/** A comma-separated list of secrets, newest first. */
	secretList(name: SettingName): string[] {
		const value = this.string(name);
		if (value === undefined) return [];
		const secrets = value.split(",").map((part) => part.trim());
		if (secrets.some((secret) => secret === "")) {
			this.problem(`${name} has an empty entry in its list`);
			return [];
		}
		if (new Set(secrets).size !== secrets.length) {
			this.problem(`${name} lists the same secret twice`);
			return [];
		}
		return secrets;
	}
}
