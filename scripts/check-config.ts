// Validates settings before they are deployed, with the Worker's own rules (src/config.ts).
// Run `npm run check-config -- --help` for the usage.
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../src/config.ts";
import type { Env } from "../src/env.ts";
import { parseArguments, runMain, UsageError } from "./lib/cli.ts";
import { parseDotenv } from "./lib/dev-vars.ts";
import { keyringNamespaceId } from "./lib/keyring-namespace.ts";

const USAGE = `usage: npm run check-config -- [--env NAME] [--strict] [--config PATH] FILE [FILE...]

Checks each dotenv-style FILE (NAME=value per line, like .dev.vars: the secrets; read as
wrangler reads .dev.vars) together with the vars of wrangler.toml, using the Worker's own rules.

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

/**
 * The `NAME = "value"` lines of one table of wrangler.toml (`[vars]` or `[env.NAME.vars]`),
 * and whether that environment exists at all. Enough TOML for this file: basic and literal
 * strings, trailing comments.
 */
function wranglerVars(text: string, env: string | null): { vars: Record<string, string>; placeholders: string[]; envFound: boolean } {
	const table = env === null ? "vars" : `env.${env}.vars`;
	const vars: Record<string, string> = {};
	// The vars whose line still says "# fill in": the repository's example values, not a deployment's.
	const placeholders: string[] = [];
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
		const match = /^([A-Za-z0-9_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(#.*)?$/.exec(line);
		if (match === null) continue;
		vars[match[1]!] = match[3] ?? (JSON.parse(`"${match[2]}"`) as string);
		if (/^#\s*fill in\b/i.test(match[4] ?? "")) placeholders.push(match[1]!);
	}
	return { vars, placeholders, envFound };
}

const CLI = { name: "check-config", usage: USAGE };

async function main(): Promise<number> {
	const { values, positionals: files } = parseArguments(CLI, {
		env: { type: "string" },
		strict: { type: "boolean", default: false },
		config: { type: "string" },
	});
	const env = values.env ?? null;
	if (env !== null && !/^[A-Za-z0-9_-]+$/.test(env)) throw new UsageError("--env takes an environment name");
	if (values.config === "") throw new UsageError("--config takes a path");
	if (files.length === 0) throw new UsageError("no settings file given");
	const configPath = values.config ?? new URL("../wrangler.toml", import.meta.url);

	let wranglerToml: string;
	try {
		wranglerToml = readFileSync(configPath, "utf8");
	} catch (error) {
		throw new UsageError(`cannot read ${String(configPath)} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
	}
	const { vars, placeholders, envFound } = wranglerVars(wranglerToml, env);
	if (!envFound) throw new UsageError(`the wrangler configuration has no [env.${env}]`);
	const table = env === null ? "[vars]" : `[env.${env}.vars]`;
	const placeholderWarning = (name: string) => `${name} is still the example value of wrangler.toml's ${table} (marked "fill in"): set the real one there`;

	// The KEYRING namespace the environment binds (a stand-in: only its presence is checked).
	const keyringBinding = keyringNamespaceId(wranglerToml, env) === null ? {} : { KEYRING: {} };
	let failed = false;
	for (const file of files) {
		let settings: Env;
		try {
			settings = { ...vars, ...Object.fromEntries(parseDotenv(readFileSync(file, "utf8"))), ...keyringBinding } as Env;
		} catch (error) {
			console.error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
			failed = true;
			continue;
		}
		try {
			const config = loadConfig(settings);
			const unfilled = placeholders.filter((name) => settings[name as keyof Env] === vars[name]);
			const warnings = [...unfilled.map(placeholderWarning), ...config.warnings];
			const verdict = warnings.length === 0 ? "ok" : "ok, with warnings";
			console.log(`${file}: ${verdict} (${config.environment})${warnings.map((w) => `\n  warning: ${w}`).join("")}`);
			if (values.strict && warnings.length > 0) failed = true;
		} catch (error) {
			if (!(error instanceof ConfigError)) throw error;
			const environment = settings.ENVIRONMENT?.trim() || "production";
			console.error(`${file}: invalid (${environment})\n${error.problems.map((p) => `  - ${p}`).join("\n")}`);
			failed = true;
		}
	}
	return failed ? 1 : 0;
}

runMain(CLI, main);
