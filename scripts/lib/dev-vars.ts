// The settings of a dotenv-style file (`.dev.vars`), read the way wrangler reads them for the
// Worker: with dotenv's own `parse`, pinned to the version wrangler bundles. Every script that
// reads `.dev.vars` goes through here, so a quoted value (`HMAC_SECRET="..."`) means the same
// to the signer, the smoke check and check-config as it does to the gateway.
import { existsSync, readFileSync } from "node:fs";
import { parse } from "dotenv";

/** `NAME=value` lines: quotes removed, `#` starts a comment outside quotes, the last of a name wins. */
export function parseDotenv(text: string): Map<string, string> {
	return new Map(Object.entries(parse(text)));
}

/** The settings of `.dev.vars` in `folder` (default: the current one), or undefined when there is no such file. */
export function readDevVars(folder = "."): Map<string, string> | undefined {
	const path = `${folder}/.dev.vars`;
	return existsSync(path) ? parseDotenv(readFileSync(path, "utf8")) : undefined;
}

/** A secret and where it came from, for messages ("HMAC_SECRET in .dev.vars"), never the value. */
export interface SecretSetting {
	value: string;
	source: string;
}

/**
 * The secret the gateway verifies `clientId` with, from settings such as `.dev.vars`: the
 * newest of its own in `HMAC_CLIENTS` when it is listed there (then only those verify), else
 * the newest of `HMAC_SECRET` (or its alias `E2E_SESSION_HMAC_SECRET`).
 */
export function clientSecret(settings: Map<string, string>, clientId: string, where: string): SecretSetting | undefined {
	const clients = settings.get("HMAC_CLIENTS");
	if (clients) {
		let parsed: unknown;
		try {
			parsed = JSON.parse(clients);
		} catch {
			throw new Error(`HMAC_CLIENTS in ${where} is not valid JSON (one JSON object on one line)`);
		}
		const own = typeof parsed === "object" && parsed !== null && Object.hasOwn(parsed, clientId) ? (parsed as Record<string, unknown>)[clientId] : undefined;
		const newest = Array.isArray(own) ? own[0] : own;
		if (typeof newest === "string" && newest !== "") return { value: newest, source: `HMAC_CLIENTS["${clientId}"] in ${where}` };
	}
	for (const name of ["HMAC_SECRET", "E2E_SESSION_HMAC_SECRET"]) {
		const value = settings.get(name)?.split(",")[0]!.trim();
		if (value) return { value, source: `${name} in ${where}` };
	}
	return undefined;
}
