import { DEFAULT_SIGNATURE_SCHEMES, parseSignatureSchemes } from "../auth/schemes.ts";
import type { SignatureScheme } from "../events.ts";
import { readClients } from "./clients.ts";
import type { SettingReader } from "./reader.ts";

/** Production's limits (docs/design.md, "Configuration"); development and test take more, with a warning. */
export const PRODUCTION_LIMITS = {
	minSecretLength: 32,
	maxSecretsPerList: 3,
	maxSkewMs: 3_600_000,
	maxBodyBytes: 33_554_432,
} as const;

export interface AuthConfig {
	/** Secrets for any client, newest first (`HMAC_SECRET`, or its alias `E2E_SESSION_HMAC_SECRET`). */
	sharedSecrets: readonly string[];
	/** Per-client secrets, newest first (`HMAC_CLIENTS`). */
	clientSecrets: ReadonlyMap<string, readonly string[]>;
	/** `HMAC_MAX_SKEW_MS`, 300000 when unset. */
	maxSkewMs: number;
	/** `MAX_BODY_BYTES`, 1 MiB when unset. */
	maxBodyBytes: number;
	/** The signature schemes accepted (`SIGNATURE_SCHEMES`, both when unset). */
	schemes: readonly SignatureScheme[];
}

/** The signing settings: secrets, the clock window, the body bound, the schemes. */
export function readAuth(read: SettingReader): AuthConfig {
	// A whitespace-only HMAC_SECRET counts as unset, so it does not hide the alias.
	const secretName = read.string("HMAC_SECRET") !== undefined ? "HMAC_SECRET" : "E2E_SESSION_HMAC_SECRET";
	const sharedSecrets = read.secretList(secretName);
	checkSecretLists(read, secretName, [sharedSecrets], "");
	const clientSecrets = readClients(read);
	checkSecretLists(read, "HMAC_CLIENTS", [...clientSecrets.values()], " for a client");

	const schemes = parseSignatureSchemes(read.string("SIGNATURE_SCHEMES"));
	if (schemes === null) read.problem("SIGNATURE_SCHEMES must be v1, v2 or v1,v2");

	const maxSkewMs = read.integer("HMAC_MAX_SKEW_MS", 300_000, { min: 1 });
	if (maxSkewMs > PRODUCTION_LIMITS.maxSkewMs) read.refuseInProduction(`HMAC_MAX_SKEW_MS is over ${PRODUCTION_LIMITS.maxSkewMs}`);
	const maxBodyBytes = read.integer("MAX_BODY_BYTES", 1_048_576, { min: 1, max: 100 * 1_048_576 });
	if (maxBodyBytes > PRODUCTION_LIMITS.maxBodyBytes) read.refuseInProduction(`MAX_BODY_BYTES is over ${PRODUCTION_LIMITS.maxBodyBytes}`);

	return { sharedSecrets, clientSecrets, maxSkewMs, maxBodyBytes, schemes: schemes ?? DEFAULT_SIGNATURE_SCHEMES };
}

/** Production's bounds on rotation lists: at most 3 secrets in a list, none shorter than 32 characters. */
function checkSecretLists(read: SettingReader, name: string, lists: readonly (readonly string[])[], whose: string): void {
	const { maxSecretsPerList, minSecretLength } = PRODUCTION_LIMITS;
	if (lists.some((list) => list.length > maxSecretsPerList)) {
		read.refuseInProduction(`${name} lists more than ${maxSecretsPerList} secrets${whose}`);
	}
	if (lists.some((list) => list.some((secret) => secret.length < minSecretLength))) {
		read.refuseInProduction(`${name} has a secret shorter than ${minSecretLength} characters`);
	}
}
