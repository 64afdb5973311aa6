// Validates a settings file before it is deployed: npm run check-config -- FILE [FILE...]
// Files are dotenv style (NAME=value per line), like .dev.vars; the wrangler.toml [vars]
// are read first, so a file with only the secrets is checked together with them.
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../src/config.ts";
import type { Env } from "../src/env.ts";

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

function wranglerVars(): Record<string, string> {
	const values: Record<string, string> = {};
	let inVars = false;
	for (const raw of readFileSync("wrangler.toml", "utf8").split("\n")) {
		const line = raw.trim();
		if (line.startsWith("[")) inVars = line === "[vars]";
		else if (inVars) {
			const match = /^([A-Z0-9_]+)\s*=\s*"(.*)"$/.exec(line);
			if (match) values[match[1]!] = match[2]!;
		}
	}
	return values;
}

const files = process.argv.slice(2);
if (files.length === 0) {
	console.error("usage: npm run check-config -- FILE [FILE...]");
	process.exit(2);
}
let failed = false;
for (const file of files) {
	let env: Env;
	try {
		env = { ...wranglerVars(), ...parseDotenv(readFileSync(file, "utf8")) } as Env;
	} catch (error) {
		console.error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
		failed = true;
		continue;
	}
	try {
		const config = loadConfig(env);
		const secrets = config.auth.sharedSecrets.length + config.auth.clientSecrets.size;
		const warnings: string[] = [];
		if (secrets === 0) warnings.push("no HMAC secret: every signed request will get 500 config_error");
		if (config.isProduction && config.metrics.tokens.length === 0) warnings.push("METRICS_TOKEN is required in production");
		if (config.isProduction && config.origin.token === null) warnings.push("ORIGIN_TOKEN is not set");
		if (config.isProduction && config.replay.upstash === null) warnings.push("no Upstash: replay protection is per isolate only");
		console.log(`${file}: ok (${config.environment})${warnings.map((w) => `\n  warning: ${w}`).join("")}`);
		if (config.isProduction && config.metrics.tokens.length === 0) failed = true;
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		console.error(`${file}: invalid\n${error.problems.map((p) => `  - ${p}`).join("\n")}`);
		failed = true;
	}
}
process.exit(failed ? 1 : 0);
