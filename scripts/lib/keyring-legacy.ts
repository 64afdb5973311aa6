// Records of the keyring's first format (`"v": 1`: only the secrets sealed, the rest in plain
// JSON), which the gateway refuses since every field is sealed. `keys rekey` reads them here,
// once, and writes them in the current format: nothing else reads them.
import { CLIENT_ID_PATTERN } from "../../src/auth/grammar.ts";
import { MAX_SECRETS_PER_CLIENT, type RecordContent } from "../../src/keyring/record.ts";
import { KeyringDecryptError, openSealed } from "../../src/keyring/sealing.ts";

/** A first-format record: its id and sealed secrets, and the fields that were not sealed. */
export interface LegacyRecord {
	id: string;
	secrets: string;
	limits?: Record<string, unknown>;
	disabled: boolean;
	createdAt: string;
	updatedAt: string;
}

/** `value` as a first-format record, or null. */
export function parseLegacyRecord(value: unknown): LegacyRecord | null {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
	const record = value as Record<string, unknown>;
	if (record.v !== 1 || typeof record.id !== "string" || !CLIENT_ID_PATTERN.test(record.id)) return null;
	if (typeof record.secrets !== "string" || typeof record.disabled !== "boolean") return null;
	if (typeof record.createdAt !== "string" || typeof record.updatedAt !== "string") return null;
	const limits = record.limits;
	if (limits !== undefined && (typeof limits !== "object" || limits === null || Array.isArray(limits))) return null;
	return {
		id: record.id,
		secrets: record.secrets,
		...(limits === undefined ? {} : { limits: limits as Record<string, unknown> }),
		disabled: record.disabled,
		createdAt: record.createdAt,
		updatedAt: record.updatedAt,
	};
}

/**
 * The content of a first-format record, its secrets opened under one of `keys`. What was not
 * sealed is taken as it stands: the operator upgrades records they trust (docs/deploy.md).
 */
export async function openLegacyRecord(keys: readonly CryptoKey[], record: LegacyRecord): Promise<RecordContent> {
	const { plaintext } = await openSealed(keys, record.id, record.secrets);
	let secrets: unknown;
	try {
		secrets = JSON.parse(plaintext);
	} catch {
		throw new KeyringDecryptError("the sealed secrets are not a list");
	}
	if (!Array.isArray(secrets) || secrets.length === 0 || secrets.length > MAX_SECRETS_PER_CLIENT || !secrets.every((s) => typeof s === "string" && s !== "")) {
		throw new KeyringDecryptError("the sealed secrets are not a list of secrets");
	}
	return {
		secrets: secrets as string[],
		...(record.limits === undefined ? {} : { limits: record.limits }),
		disabled: record.disabled,
		revoked: false,
		createdAt: record.createdAt,
		updatedAt: record.updatedAt,
	};
}
