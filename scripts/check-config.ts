// Validates settings before they are deployed, with the Worker's own rules (src/config.ts).
// Run `npm run check-config -- --help` for the usage.
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../src/config.ts";
import type { Env } from "../src/env.ts";

const USAGE = `usage: npm run check-config -- [--env NAME] [--strict] [--config PATH] FILE [FILE...]

Checks each dotenv-style FILE (NAME=value per line, like .dev.vars: the secrets) together
with the vars of wrangler.toml, using the Worker's own rules.

  --env NAME   take the vars of [env.NAME.vars], as \`wrangler deploy --env NAME\` does
               (an environment does not inherit the top-level [vars]); without it, the
               top-level [vars], as \`wrangler deploy\` without --env
  --strict     count warnings as failures (exit 1)
  --config PATH  the wrangler configuration to read (default: the repository's wrangler.toml)
  --help       print this and exit 0

Each file is reported as \`ok\`, \`ok, with warnings\` (each warning listed) or \`invalid\`
(each problem listed). Exit status: 0 when every file is ok or ok with warnings (with
--strict: only when every file is ok), 1 when a file is invalid or cannot be read,
2 for a usage error (an unknown option, no file, an environment the configuration lacks).`;

interface Options {
	env: string | null;
	strict: boolean;
	config: string | URL;
	files: string[];
}

function usageError(message: string): never {
	console.error(`check-config: ${message}`);
	console.error(USAGE);
	process.exit(2);
	throw new Error("process.exit returned");
}

function parseArguments(args: readonly string[]): Options {
	const options: Options = { env: null, strict: false, config: new URL("../wrangler.toml", import.meta.url), files: [] };
	for (let i = 0; i < args.length; i++) {
		const arg = args[i]!;
		if (arg === "--help" || arg === "-h") {
			console.log(USAGE);
			process.exit(0);
		} else if (arg === "--strict") {
			options.strict = true;
		} else if (arg === "--env" || arg.startsWith("--env=")) {
			const name = arg === "--env" ? args[++i] : arg.slice("--env=".length);
			if (name === undefined || !/^[A-Za-z0-9_-]+$/.test(name)) usageError("--env takes an environment name");
			options.env = name;
		} else if (arg === "--config" || arg.startsWith("--config=")) {
			const path = arg === "--config" ? args[++i] : arg.slice("--config=".length);
			if (path === undefined || path === "") usageError("--config takes a path");
			options.config = path;
		} else if (arg === "--") {
			options.files.push(...args.slice(i + 1));
			break;
		} else if (arg.startsWith("-")) {
			usageError(`unknown option ${arg}`);
		} else {
			options.files.push(arg);
		}
	}
	if (options.files.length === 0) usageError("no settings file given");
	return options;
}

function parseDotenv(text: string): Record<string, string> {
	const values: Record<string, string> = {};
	for (const raw of text.split("\n")) {
		const line = raw.trim();
		if (line === "" || line.startsWith("#")) continue;
		const eq = line.indexOf("=");
		if (eq <= 0) continue;
		let value = line.slice(eq + 1).trim();
		if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
		values[line.slice(0, eq).trim()] = value;
	}
	return values;
}

/**
 * The `NAME = "value"` lines of one table of wrangler.toml (`[vars]` or `[env.NAME.vars]`),
 * and whether that environment exists at all. Enough TOML for this file: basic and literal
 * strings, trailing comments.
 */
function wranglerVars(text: string, env: string | null): { vars: Record<string, string>; envFound: boolean } {
	const table = env === null ? "vars" : `env.${env}.vars`;
	const vars: Record<string, string> = {};
	let inTable = false;
	let envFound = env === null;
	for (const raw of text.split("\n")) {
		const line = raw.trim();
		const header = /^\[\[?\s*([^\]]+?)\s*\]\]?/.exec(line);
		if (header !== null) {
			const name = header[1]!;
			inTable = name === table;
			if (env !== null && (name === `env.${env}` || name.startsWith(`env.${env}.`))) envFound = true;
			continue;
		}
		if (!inTable) continue;
		const match = /^([A-Za-z0-9_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$/.exec(line);
		if (match === null) continue;
		vars[match[1]!] = match[3] ?? (JSON.parse(`"${match[2]}"`) as string);
	}
	return { vars, envFound };
}

const options = parseArguments(process.argv.slice(2));
let wranglerToml: string;
try {
	wranglerToml = readFileSync(options.config, "utf8");
} catch (error) {
	usageError(`cannot read ${String(options.config)} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
}
const { vars, envFound } = wranglerVars(wranglerToml, options.env);
if (!envFound) usageError(`the wrangler configuration has no [env.${options.env}]`);

let failed = false;
for (const file of options.files) {
	let env: Env;
	try {
		env = { ...vars, ...parseDotenv(readFileSync(file, "utf8")) } as Env;
	} catch (error) {
		console.error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
		failed = true;
		continue;
	}
	try {
		const config = loadConfig(env);
		const verdict = config.warnings.length === 0 ? "ok" : "ok, with warnings";
		console.log(`${file}: ${verdict} (${config.environment})${config.warnings.map((w) => `\n  warning: ${w}`).join("")}`);
		if (options.strict && config.warnings.length > 0) failed = true;
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		const environment = env.ENVIRONMENT?.trim() || "production";
		console.error(`${file}: invalid (${environment})\n${error.problems.map((p) => `  - ${p}`).join("\n")}`);
		failed = true;
	}
}
process.exit(failed ? 1 : 0);
