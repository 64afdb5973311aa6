// KEYRING_KEY for the CLIs: from the environment, else (for the local namespace only) from
// .dev.vars, where `npm run dev` puts a fresh one on its first run.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { decodeKeyringKey, generateKeyringKey } from "../../src/keyring/sealing.ts";
import { parseDotenv } from "./dev-vars.ts";

/** Where KEYRING_KEY came from, and its text; null text when it is nowhere. */
export function findKeyringKey(options: { allowDevVars: boolean; devVarsPath?: string }): { text: string | null; source: string } {
	const fromEnv = process.env.KEYRING_KEY?.trim();
	if (fromEnv) return { text: fromEnv, source: "the environment" };
	const path = options.devVarsPath ?? ".dev.vars";
	if (options.allowDevVars && existsSync(path)) {
		const fromFile = parseDotenv(readFileSync(path, "utf8")).get("KEYRING_KEY");
		if (fromFile) return { text: fromFile, source: path };
	}
	return { text: null, source: "nowhere" };
}

/** The key's bytes, or an error naming where it came from (never its value). */
export function decodeFoundKey(found: { text: string; source: string }): Uint8Array<ArrayBuffer> {
	const bytes = decodeKeyringKey(found.text);
	if (bytes === null) throw new Error(`KEYRING_KEY from ${found.source} must be 32 bytes in base64 (openssl rand -base64 32)`);
	return bytes;
}

/** Adds a fresh KEYRING_KEY to `.dev.vars` when it has none; true when it did. */
export function ensureDevKeyringKey(path = ".dev.vars"): boolean {
	const text = existsSync(path) ? readFileSync(path, "utf8") : "";
	if (parseDotenv(text).has("KEYRING_KEY")) return false;
	const separator = text === "" || text.endsWith("\n") ? "" : "\n";
	appendFileSync(path, `${separator}# The keyring's key (npm run keys), made by npm run dev for this checkout only.\nKEYRING_KEY=${generateKeyringKey()}\n`, { mode: 0o600 });
	return true;
}
