import { CLIENT_ID_PATTERN } from "../auth/grammar.ts";
import { topLevelKeys } from "../json-keys.ts";
import type { SettingReader } from "./reader.ts";

/** The hard bound of a client's list in `HMAC_CLIENTS`, in every environment. */
export const MAX_SECRETS_PER_CLIENT = 8;

/**
 * `HMAC_CLIENTS`: `{"client-id": "secret" | ["new", "old"]}` into a Map, so ids like
 * `__proto__` are plain keys. A client id named twice, even in another letter case, is a
 * problem in every environment: which of the two would verify is not for the reader to guess,
 * and `alice` beside `Alice` would let one id pass for the other where ids compare without case.
 */
export function readClients(read: SettingReader): Map<string, string[]> {
	const clients = new Map<string, string[]>();
	const value = read.string("HMAC_CLIENTS");
	if (value === undefined) return clients;
	let parsed: unknown;
	try {
		parsed = JSON.parse(value);
	} catch {
		read.problem("HMAC_CLIENTS is not valid JSON");
		return clients;
	}
	if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
		read.problem("HMAC_CLIENTS must be a JSON object of client id to secret");
		return clients;
	}
	const keys = topLevelKeys(value);
	if (new Set(keys).size !== keys.length) {
		read.problem("HMAC_CLIENTS names the same client id twice");
		return clients;
	}
	if (new Set(keys.map((key) => key.toLowerCase())).size !== keys.length) {
		read.problem("HMAC_CLIENTS names two client ids that differ only in letter case");
		return clients;
	}
	for (const [clientId, entry] of Object.entries(parsed)) {
		if (!CLIENT_ID_PATTERN.test(clientId)) {
			read.problem("HMAC_CLIENTS has a client id outside the client id grammar");
			continue;
		}
		const secrets = secretsOf(entry);
		if (secrets === null) {
			read.problem(`HMAC_CLIENTS must map each client id to a non-empty secret or a list of 1 to ${MAX_SECRETS_PER_CLIENT} secrets`);
			continue;
		}
		clients.set(clientId, secrets);
	}
	return clients;
}

/** One client's entry as its list of secrets, or null when it is not 1 to 8 non-empty strings. */
function secretsOf(entry: unknown): string[] | null {
	const list: unknown[] = typeof entry === "string" ? [entry] : Array.isArray(entry) ? entry : [];
	if (list.length === 0 || list.length > MAX_SECRETS_PER_CLIENT) return null;
	const secrets = list.filter((secret): secret is string => typeof secret === "string" && secret !== "");
	return secrets.length === list.length ? secrets : null;
}
