// The keyring's admin operations (docs/design.md, "Keyring"), on any AdminNamespace: records
// are sealed and opened with the Worker's own code (src/keyring), so what the CLI writes is
// what the gateway reads.
import { CLIENT_ID_PATTERN } from "../../src/auth/grammar.ts";
import { MAX_SECRETS_PER_CLIENT, parseStoredRecord, RECORD_KEY_PREFIX, RECORD_VERSION, recordKey, type StoredRecord } from "../../src/keyring/record.ts";
import { KeyringDecryptError, openSecrets, sealSecrets, toBase64 } from "../../src/keyring/sealing.ts";
import type { AdminNamespace } from "./keyring-namespace.ts";

/** What the operator did wrong, or what the keyring does not allow: one line, exit 1. */
export class KeyringAdminError extends Error {
	override readonly name = "KeyringAdminError";
}

/** A client as `list` and `show` print it: never a secret. */
export interface ClientSummary {
	id: string;
	/** Secrets held (2 or 3: a rotation is under way); null when they do not open under this KEYRING_KEY. */
	secrets: number | null;
	disabled: boolean;
	limits?: Record<string, unknown>;
	createdAt: string;
	updatedAt: string;
}

/** A fresh client secret: 256 random bits, base64url (43 characters). */
export function generateClientSecret(): string {
	return toBase64(crypto.getRandomValues(new Uint8Array(32))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export class KeyringAdmin {
	private readonly namespace: AdminNamespace;
	private readonly key: CryptoKey | null;
	private readonly now: () => Date;

	constructor(namespace: AdminNamespace, key: CryptoKey | null, now: () => Date = () => new Date()) {
		this.namespace = namespace;
		this.key = key;
		this.now = now;
	}

	/** Registers `id` with a fresh secret, which is returned (and is never readable again). */
	async add(id: string, options: { limits?: Record<string, unknown>; secrets?: readonly string[] } = {}): Promise<string> {
		checkId(id);
		const existing = await this.read(id);
		if (existing !== null) {
			throw new KeyringAdminError(
				existing.id === id ? `client ${id} already exists (rotate it, or revoke it first)` : `client ${existing.id} already exists, and ids that differ only in case are one client`,
			);
		}
		const secrets = options.secrets ?? [generateClientSecret()];
		const at = this.now().toISOString();
		await this.write({
			v: RECORD_VERSION,
			id,
			secrets: await sealSecrets(this.requireKey(), id, secrets),
			...(options.limits === undefined ? {} : { limits: options.limits }),
			disabled: false,
			createdAt: at,
			updatedAt: at,
		});
		return secrets[0]!;
	}

	/** Puts a fresh secret first and keeps the others (until `revokeOld`); returns the new secret. */
	async rotate(id: string): Promise<string> {
		const record = await this.existing(id);
		const secrets = await this.open(record);
		if (secrets.length >= MAX_SECRETS_PER_CLIENT) {
			throw new KeyringAdminError(`client ${id} already holds ${MAX_SECRETS_PER_CLIENT} secrets: run revoke ${id} --old first`);
		}
		const secret = generateClientSecret();
		await this.write({ ...record, secrets: await sealSecrets(this.requireKey(), id, [secret, ...secrets]), updatedAt: this.now().toISOString() });
		return secret;
	}

	/** Drops every secret but the newest; returns how many were dropped. */
	async revokeOld(id: string): Promise<number> {
		const record = await this.existing(id);
		const secrets = await this.open(record);
		if (secrets.length > 1) {
			await this.write({ ...record, secrets: await sealSecrets(this.requireKey(), id, secrets.slice(0, 1)), updatedAt: this.now().toISOString() });
		}
		return secrets.length - 1;
	}

	/** Removes the client's record. */
	async revoke(id: string): Promise<void> {
		await this.existing(id);
		await this.namespace.delete(recordKey(id));
	}

	async setDisabled(id: string, disabled: boolean): Promise<void> {
		const record = await this.existing(id);
		if (record.disabled !== disabled) await this.write({ ...record, disabled, updatedAt: this.now().toISOString() });
	}

	async show(id: string): Promise<ClientSummary> {
		return this.summary(await this.existing(id));
	}

	/** Every client, sorted by id; records that are not records are reported, not skipped silently. */
	async list(): Promise<{ clients: ClientSummary[]; unreadable: string[] }> {
		const keys = (await this.namespace.list(RECORD_KEY_PREFIX)).sort();
		const clients: ClientSummary[] = [];
		const unreadable: string[] = [];
		for (let i = 0; i < keys.length; i += 100) {
			const batch = keys.slice(i, i + 100);
			const values = await this.namespace.getMany(batch);
			for (const [j, value] of values.entries()) {
				const record = value === null ? null : parseJsonRecord(value);
				if (record === null || recordKey(record.id) !== batch[j]) {
					if (value !== null) unreadable.push(batch[j]!);
					continue;
				}
				clients.push(await this.summary(record));
			}
		}
		return { clients, unreadable };
	}

	/**
	 * Moves `HMAC_CLIENTS` (its JSON text) into the keyring with the same secrets, so no client
	 * changes anything. Ids already in the keyring are left as they are and reported. Nothing
	 * is written when a secret is shorter than `minSecretLength` (a deployment's rule).
	 */
	async migrate(hmacClients: string, options: { minSecretLength?: number } = {}): Promise<{ added: string[]; skipped: string[] }> {
		const clients = parseHmacClients(hmacClients);
		const min = options.minSecretLength ?? 0;
		if ([...clients.values()].some((secrets) => secrets.some((secret) => secret.length < min))) {
			throw new KeyringAdminError(`HMAC_CLIENTS has a secret shorter than ${min} characters, which production refuses: rotate it first`);
		}
		const added: string[] = [];
		const skipped: string[] = [];
		for (const [id, secrets] of clients) {
			if ((await this.read(id)) !== null) {
				skipped.push(id);
				continue;
			}
			await this.add(id, { secrets });
			added.push(id);
		}
		return { added, skipped };
	}

	private async summary(record: StoredRecord): Promise<ClientSummary> {
		let secrets: number | null = null;
		if (this.key !== null) {
			try {
				secrets = (await openSecrets(this.key, record.id, record.secrets)).length;
			} catch (error) {
				if (!(error instanceof KeyringDecryptError)) throw error;
			}
		}
		return {
			id: record.id,
			secrets,
			disabled: record.disabled,
			...(record.limits === undefined ? {} : { limits: record.limits }),
			createdAt: record.createdAt,
			updatedAt: record.updatedAt,
		};
	}

	private async read(id: string): Promise<StoredRecord | null> {
		const [value] = await this.namespace.getMany([recordKey(id)]);
		if (value === null || value === undefined) return null;
		const record = parseJsonRecord(value);
		if (record === null) throw new KeyringAdminError(`the keyring entry ${recordKey(id)} is not a record this version can read`);
		return record;
	}

	private async existing(id: string): Promise<StoredRecord> {
		checkId(id);
		const record = await this.read(id);
		if (record === null || record.id !== id) throw new KeyringAdminError(`no client ${id} in the keyring`);
		return record;
	}

	private async open(record: StoredRecord): Promise<string[]> {
		try {
			return await openSecrets(this.requireKey(), record.id, record.secrets);
		} catch (error) {
			if (error instanceof KeyringDecryptError) {
				throw new KeyringAdminError(`the secrets of ${record.id} do not decrypt under this KEYRING_KEY (another key, or a changed record)`);
			}
			throw error;
		}
	}

	private write(record: StoredRecord): Promise<void> {
		return this.namespace.put(recordKey(record.id), JSON.stringify(record));
	}

	private requireKey(): CryptoKey {
		if (this.key === null) throw new KeyringAdminError("KEYRING_KEY is not set (in the environment, or in .dev.vars for the local namespace)");
		return this.key;
	}
}

function checkId(id: string): void {
	if (!CLIENT_ID_PATTERN.test(id)) throw new KeyringAdminError("a client id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
}

function parseJsonRecord(text: string): StoredRecord | null {
	try {
		return parseStoredRecord(JSON.parse(text));
	} catch {
		return null;
	}
}

/** `HMAC_CLIENTS` as the gateway reads it, checked the same way; errors never quote a value. */
export function parseHmacClients(text: string): Map<string, string[]> {
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		throw new KeyringAdminError("HMAC_CLIENTS is not valid JSON");
	}
	if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
		throw new KeyringAdminError("HMAC_CLIENTS must be a JSON object of client id to secret");
	}
	const clients = new Map<string, string[]>();
	const lowered = new Set<string>();
	for (const [id, entry] of Object.entries(parsed)) {
		if (!CLIENT_ID_PATTERN.test(id)) throw new KeyringAdminError("HMAC_CLIENTS has a client id outside the client id grammar");
		if (lowered.has(id.toLowerCase())) throw new KeyringAdminError("HMAC_CLIENTS names two ids that differ only in case");
		lowered.add(id.toLowerCase());
		const secrets = typeof entry === "string" ? [entry] : entry;
		if (!Array.isArray(secrets) || secrets.length === 0 || secrets.length > MAX_SECRETS_PER_CLIENT || secrets.some((s) => typeof s !== "string" || s === "")) {
			throw new KeyringAdminError(`HMAC_CLIENTS must map each client id to a secret or a list of 1 to ${MAX_SECRETS_PER_CLIENT} secrets (the keyring's limit)`);
		}
		clients.set(id, secrets as string[]);
	}
	return clients;
}
