// The keyring's admin operations (docs/design.md, "Keyring"), on any AdminNamespace: records
// are sealed and opened with the Worker's own code (src/keyring), so what the CLI writes is
// what the gateway reads. Every field of a record is sealed: nothing is changed without the key.
import { CLIENT_ID_PATTERN } from "../../src/auth/grammar.ts";
import {
	MAX_SECRETS_PER_CLIENT,
	parseStoredRecord,
	RECORD_KEY_PREFIX,
	RECORD_VERSION,
	recordKey,
	type RecordContent,
	type StoredRecord,
} from "../../src/keyring/record.ts";
import { KeyringDecryptError, openRecord, sealRecord, toBase64 } from "../../src/keyring/sealing.ts";
import { openLegacyRecord, parseLegacyRecord } from "./keyring-legacy.ts";
import type { AdminNamespace } from "./keyring-namespace.ts";

/** What the operator did wrong, or what the keyring does not allow: one line, exit 1. */
export class KeyringAdminError extends Error {
	override readonly name = "KeyringAdminError";
}

/** A client as `list` and `show` print it: never a secret. */
export interface ClientSummary {
	id: string;
	/**
	 * Secrets held (2 or 3: a rotation is under way; 0: revoked); null when the record does not
	 * open under this KEYRING_KEY, and then nothing else of it can be read.
	 */
	secrets: number | null;
	disabled?: boolean;
	/** A tombstone: refused whatever signs it, until `forget`. */
	revoked?: boolean;
	limits?: Record<string, unknown>;
	createdAt?: string;
	updatedAt?: string;
}

/** What `rekey` did: ids re-sealed under the first key, upgraded from the first format, already current, and keys it could not open. */
export interface RekeyReport {
	resealed: string[];
	upgraded: string[];
	current: number;
	unreadable: string[];
}

/** A fresh client secret: 256 random bits, base64url (43 characters). */
export function generateClientSecret(): string {
	return toBase64(crypto.getRandomValues(new Uint8Array(32))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

interface Opened {
	record: StoredRecord;
	content: RecordContent;
}

export class KeyringAdmin {
	private readonly namespace: AdminNamespace;
	private readonly keys: readonly CryptoKey[];
	private readonly now: () => Date;

	/** `keys`: KEYRING_KEY's keys, new first (records are sealed with the first); none when it is not set. */
	constructor(namespace: AdminNamespace, keys: readonly CryptoKey[], now: () => Date = () => new Date()) {
		this.namespace = namespace;
		this.keys = keys;
		this.now = now;
	}

	/** Registers `id` (anew, over its tombstone) with a fresh secret, which is returned and never readable again. */
	async add(id: string, options: { limits?: Record<string, unknown>; secrets?: readonly string[] } = {}): Promise<string> {
		checkId(id);
		const existing = await this.read(id);
		if (existing !== null) {
			if (existing.id !== id) throw new KeyringAdminError(`client ${existing.id} already exists, and ids that differ only in case are one client`);
			if (!(await this.open(existing)).revoked) {
				throw new KeyringAdminError(`client ${id} already exists (rotate it, change its limits with limits ${id}, or revoke it first)`);
			}
		}
		const secrets = options.secrets ?? [generateClientSecret()];
		const at = this.now().toISOString();
		await this.write(id, { secrets: [...secrets], ...limitsField(options.limits), disabled: false, revoked: false, createdAt: at, updatedAt: at });
		return secrets[0]!;
	}

	/** Puts a fresh secret first and keeps the others (until `revokeOld`); returns the new secret. */
	async rotate(id: string): Promise<string> {
		const { content } = await this.live(id);
		if (content.secrets.length >= MAX_SECRETS_PER_CLIENT) {
			throw new KeyringAdminError(`client ${id} already holds ${MAX_SECRETS_PER_CLIENT} secrets, the most a client has: run revoke ${id} --old first`);
		}
		const secret = generateClientSecret();
		await this.update(id, content, { secrets: [secret, ...content.secrets] });
		return secret;
	}

	/** Drops every secret but the newest; returns how many were dropped. */
	async revokeOld(id: string): Promise<number> {
		const { content } = await this.live(id);
		if (content.secrets.length > 1) await this.update(id, content, { secrets: content.secrets.slice(0, 1) });
		return content.secrets.length - 1;
	}

	/** Leaves a tombstone: the id is refused whatever signs it, the shared secret included, until `forget`. */
	async revoke(id: string): Promise<void> {
		const { content } = await this.existing(id);
		if (content.revoked) throw new KeyringAdminError(`client ${id} is already revoked (forget ${id} removes its tombstone)`);
		await this.write(id, { secrets: [], disabled: false, revoked: true, createdAt: content.createdAt, updatedAt: this.now().toISOString() });
	}

	/** Removes a tombstone: the id is one the keyring does not name again. */
	async forget(id: string): Promise<void> {
		const { content } = await this.existing(id);
		if (!content.revoked) throw new KeyringAdminError(`client ${id} is not revoked: forget removes only a tombstone (revoke ${id} first)`);
		await this.namespace.delete(recordKey(id));
	}

	async setDisabled(id: string, disabled: boolean): Promise<void> {
		const { content } = await this.live(id);
		if (content.disabled !== disabled) await this.update(id, content, { disabled });
	}

	/** Replaces the client's limits (a `CLIENT_LIMITS` entry, already validated); undefined or `{}` removes them. */
	async setLimits(id: string, limits: Record<string, unknown> | undefined): Promise<void> {
		const { content } = await this.live(id);
		const { limits: _old, ...rest } = content;
		await this.write(id, { ...rest, ...limitsField(limits), updatedAt: this.now().toISOString() });
	}

	async show(id: string): Promise<ClientSummary> {
		checkId(id);
		const record = await this.read(id);
		if (record === null || record.id !== id) throw new KeyringAdminError(`no client ${id} in the keyring`);
		return this.summary(record);
	}

	/** Every client, sorted by id; values that are not records of this format are reported by key, not skipped silently. */
	async list(): Promise<{ clients: ClientSummary[]; unreadable: string[] }> {
		const clients: ClientSummary[] = [];
		const unreadable: string[] = [];
		for (const { key, value } of await this.all()) {
			const record = parseJson(value, parseStoredRecord);
			if (record === null || recordKey(record.id) !== key) unreadable.push(key);
			else clients.push(await this.summary(record));
		}
		return { clients, unreadable };
	}

	/**
	 * Re-seals every record under the first key of KEYRING_KEY (after it was rotated, with the
	 * old key second), and upgrades records of the first format. What opens under neither key is
	 * left as it is and reported.
	 */
	async rekey(): Promise<RekeyReport> {
		this.requireKey();
		const report: RekeyReport = { resealed: [], upgraded: [], current: 0, unreadable: [] };
		const writes: { key: string; value: string }[] = [];
		for (const { key, value } of await this.all()) {
			try {
				const record = parseJson(value, parseStoredRecord);
				const legacy = record === null ? parseJson(value, parseLegacyRecord) : null;
				const id = record?.id ?? legacy?.id;
				if (id === undefined || recordKey(id) !== key) throw new KeyringDecryptError("not a record of its key");
				if (record !== null) {
					const { content, keyIndex } = await openRecord(this.keys, id, record.sealed);
					if (keyIndex === 0) {
						report.current++;
						continue;
					}
					writes.push({ key, value: await this.seal(id, content) });
					report.resealed.push(id);
				} else {
					writes.push({ key, value: await this.seal(id, await openLegacyRecord(this.keys, legacy!)) });
					report.upgraded.push(id);
				}
			} catch (error) {
				if (!(error instanceof KeyringDecryptError)) throw error;
				report.unreadable.push(key);
			}
		}
		await this.namespace.putMany(writes);
		return report;
	}

	/**
	 * Moves `HMAC_CLIENTS` (its JSON text) into the keyring with the same secrets, so no client
	 * changes anything. Ids the keyring holds a record of (a tombstone too) are left as they are
	 * and reported. Nothing is written when a secret is shorter than `minSecretLength` (a deployment's rule).
	 */
	async migrate(hmacClients: string, options: { minSecretLength?: number } = {}): Promise<{ added: string[]; skipped: string[] }> {
		const clients = parseHmacClients(hmacClients);
		const min = options.minSecretLength ?? 0;
		if ([...clients.values()].some((secrets) => secrets.some((secret) => secret.length < min))) {
			throw new KeyringAdminError(`HMAC_CLIENTS has a secret shorter than ${min} characters, which production refuses: rotate it first`);
		}
		this.requireKey();
		const present = await this.namespace.getMany([...clients.keys()].map(recordKey));
		const added: string[] = [];
		const skipped: string[] = [];
		const writes: { key: string; value: string }[] = [];
		const at = this.now().toISOString();
		for (const [i, [id, secrets]] of [...clients].entries()) {
			if (present[i] !== null) {
				skipped.push(id);
				continue;
			}
			writes.push({ key: recordKey(id), value: await this.seal(id, { secrets, disabled: false, revoked: false, createdAt: at, updatedAt: at }) });
			added.push(id);
		}
		await this.namespace.putMany(writes);
		return { added, skipped };
	}

	private async summary(record: StoredRecord): Promise<ClientSummary> {
		let content: RecordContent;
		try {
			content = (await openRecord(this.keys, record.id, record.sealed)).content;
		} catch (error) {
			if (!(error instanceof KeyringDecryptError)) throw error;
			return { id: record.id, secrets: null };
		}
		return {
			id: record.id,
			secrets: content.secrets.length,
			disabled: content.disabled,
			revoked: content.revoked,
			...limitsField(content.limits),
			createdAt: content.createdAt,
			updatedAt: content.updatedAt,
		};
	}

	/** Every value under the records' prefix, sorted by key. */
	private async all(): Promise<{ key: string; value: string }[]> {
		const keys = (await this.namespace.list(RECORD_KEY_PREFIX)).sort();
		const found: { key: string; value: string }[] = [];
		for (let i = 0; i < keys.length; i += 100) {
			const batch = keys.slice(i, i + 100);
			for (const [j, value] of (await this.namespace.getMany(batch)).entries()) if (value !== null) found.push({ key: batch[j]!, value });
		}
		return found;
	}

	private async read(id: string): Promise<StoredRecord | null> {
		const [value] = await this.namespace.getMany([recordKey(id)]);
		if (value === null || value === undefined) return null;
		const record = parseJson(value, parseStoredRecord);
		if (record !== null) return record;
		const first = parseJson(value, parseLegacyRecord) !== null;
		throw new KeyringAdminError(
			first ? `the keyring entry ${recordKey(id)} is a record of the first format: run rekey to re-seal it` : `the keyring entry ${recordKey(id)} is not a record this version can read`,
		);
	}

	/** The record of exactly `id`, opened. */
	private async existing(id: string): Promise<Opened> {
		checkId(id);
		const record = await this.read(id);
		if (record === null || record.id !== id) throw new KeyringAdminError(`no client ${id} in the keyring`);
		return { record, content: await this.open(record) };
	}

	/** The record of exactly `id`, opened, not revoked. */
	private async live(id: string): Promise<Opened> {
		const opened = await this.existing(id);
		if (opened.content.revoked) throw new KeyringAdminError(`client ${id} is revoked: add ${id} registers it anew, forget ${id} removes its tombstone`);
		return opened;
	}

	private async open(record: StoredRecord): Promise<RecordContent> {
		try {
			return (await openRecord([...this.requireKeys()], record.id, record.sealed)).content;
		} catch (error) {
			if (error instanceof KeyringDecryptError) {
				throw new KeyringAdminError(`the record of ${record.id} does not open under this KEYRING_KEY (another key, or a record changed without it)`);
			}
			throw error;
		}
	}

	private update(id: string, content: RecordContent, change: Partial<RecordContent>): Promise<void> {
		return this.write(id, { ...content, ...change, updatedAt: this.now().toISOString() });
	}

	private async write(id: string, content: RecordContent): Promise<void> {
		await this.namespace.put(recordKey(id), await this.seal(id, content));
	}

	private async seal(id: string, content: RecordContent): Promise<string> {
		const record: StoredRecord = { v: RECORD_VERSION, id, sealed: await sealRecord(this.requireKey(), id, content) };
		return JSON.stringify(record);
	}

	private requireKeys(): readonly CryptoKey[] {
		if (this.keys.length === 0) throw new KeyringAdminError("KEYRING_KEY is not set (in the environment, or in .dev.vars for the local namespace)");
		return this.keys;
	}

	private requireKey(): CryptoKey {
		return this.requireKeys()[0]!;
	}
}

/** `{ limits }` when there are any, else nothing: `{}` removes a record's limits. */
function limitsField(limits: Record<string, unknown> | undefined): { limits?: Record<string, unknown> } {
	return limits === undefined || Object.keys(limits).length === 0 ? {} : { limits };
}

function checkId(id: string): void {
	if (!CLIENT_ID_PATTERN.test(id)) throw new KeyringAdminError("a client id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'");
}

function parseJson<T>(text: string, parse: (value: unknown) => T | null): T | null {
	try {
		return parse(JSON.parse(text));
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
