// KEYRING_KEY for the CLIs: from the environment, else (for the local namespace only) from
// .dev.vars, where `npm run dev` puts a fresh one on its first run.
import { appendFileSync, chmodSync, copyFileSync, existsSync, readFileSync } from "node:fs";
import { decodeKeyringKeys, generateKeyringKey } from "../../src/keyring/sealing.ts";
import { parseDotenv } from "./dev-vars.ts";

/** Where KEYRING_KEY came from, and its text; null text when it is nowhere. */
export function findKeyringKey(options: { env?: Record<string, string | undefined>; allowDevVars: boolean; devVarsPath?: string }): { text: string | null; source: string } {
	const fromEnv = (options.env ?? process.env).KEYRING_KEY?.trim();
	if (fromEnv) return { text: fromEnv, source: "the environment" };
	const path = options.devVarsPath ?? ".dev.vars";
	if (options.allowDevVars && existsSync(path)) {
		const fromFile = parseDotenv(readFileSync(path, "utf8")).get("KEYRING_KEY");
		if (fromFile) return { text: fromFile, source: path };
	}
	return { text: null, source: "nowhere" };
}

/** The keys' bytes (one, or new,old while it is rotated), or an error naming where they came from (never a value). */
export function decodeFoundKeys(found: { text: string; source: string }): Uint8Array<ArrayBuffer>[] {
	const keys = decodeKeyringKeys(found.text);
	if (keys === null) throw new Error(`KEYRING_KEY from ${found.source} must be 32 bytes in base64 (openssl rand -base64 32), or two such keys (new,old) while it is rotated`);
	return keys;
}

/** Files that hold secrets are readable by their owner only. */
const SECRET_FILE_MODE = 0o600;

/**
 * `npm run dev`'s `.dev.vars` (it holds `HMAC_SECRET` and `KEYRING_KEY`): created from the
 * example when there is none, a fresh KEYRING_KEY added when it has none, and mode 0600
 * whoever made it. Says what it did.
 */
export function prepareDevVars(path = ".dev.vars", examplePath = ".dev.vars.example"): { created: boolean; keyAdded: boolean } {
	const created = !existsSync(path);
	if (created) copyFileSync(examplePath, path);
	chmodSync(path, SECRET_FILE_MODE);
	return { created, keyAdded: ensureDevKeyringKey(path) };
}

/** Adds a fresh KEYRING_KEY to `.dev.vars` when it has none (the file mode 0600); true when it did. */
export function ensureDevKeyringKey(path = ".dev.vars"): boolean {
	const text = existsSync(path) ? readFileSync(path, "utf8") : "";
	if (parseDotenv(text).has("KEYRING_KEY")) return false;
	const separator = text === "" || text.endsWith("\n") ? "" : "\n";
	appendFileSync(path, `${separator}# The keyring's key (npm run keys), made by npm run dev for this checkout only.\nKEYRING_KEY=${generateKeyringKey()}\n`, { mode: SECRET_FILE_MODE });
	// `mode` applies only to a file the append creates.
	chmodSync(path, SECRET_FILE_MODE);
	return true;
}
