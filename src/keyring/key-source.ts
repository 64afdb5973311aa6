import type { KeyLookup, KeySource } from "../auth/crypto.ts";
import type { KeyringConfig } from "../config.ts";
import type { KeyringEvents } from "../events.ts";
import type { Logger } from "../log.ts";
import { KeyringLookup, type KeyringLookupResult } from "./lookup.ts";
import { importKeyringKey } from "./sealing.ts";
import { KV_MIN_CACHE_TTL_SECONDS, KvKeyringStore } from "./store.ts";

/**
 * The keyring in KV in front of the environment's secrets (docs/design.md, "Keyring"): an id
 * the keyring names is decided by its record alone (its keys, or refused when disabled,
 * revoked, another case of a registered id, or undecryptable: never a shared secret); an id it
 * does not name goes to `HMAC_CLIENTS`/`HMAC_SECRET`; an id it cannot tell about (KV failing,
 * never seen, a record and no `KEYRING_KEY`) is `unavailable`: 503, never a pass.
 *
 * @example
 * ```ts
 * const keys = new KeyringKeySource(new KeyringLookup({ store, keys, cacheMs: 30_000, maxEntries: 10_000, events, log }), new Keyring(config.auth));
 * const verdict = await verifySignature(keys, "alice", signature, data);
 * ```
 */
export class KeyringKeySource implements KeySource {
	/**
	 * With `KEYRING_KEY`, the keyring may hold any client: never "no secret configured".
	 * Without it, only the environment's secrets can verify.
	 */
	readonly configured: boolean;
	private readonly keyring: Pick<KeyringLookup, "lookup"> & Partial<Pick<KeyringLookup, "cachedClient" | "reread">>;
	private readonly fallback: KeySource;

	/** `opens`: false when `KEYRING_KEY` is not set (records are found, never opened). */
	constructor(keyring: Pick<KeyringLookup, "lookup"> & Partial<Pick<KeyringLookup, "cachedClient" | "reread">>, fallback: KeySource, opens = true) {
		this.keyring = keyring;
		this.fallback = fallback;
		this.configured = opens || fallback.configured;
	}

	/**
	 * The limits a client's record carries (the `CLIENT_LIMITS` entry format), or undefined:
	 * asked right after its keys verified, so from this isolate's cache (no read, not counted).
	 */
	limitsFor(clientId: string): Record<string, unknown> | undefined {
		return this.keyring.cachedClient?.(clientId)?.limits;
	}

	async keysFor(clientId: string): Promise<KeyLookup> {
		return this.keysOf(clientId, await this.keyring.lookup(clientId));
	}

	/** After a failed signature: the keys of the record read again, or null when nothing changed (or it may not be read now). */
	async keysAgain(clientId: string): Promise<KeyLookup | null> {
		const result = (await this.keyring.reread?.(clientId)) ?? null;
		return result === null ? null : this.keysOf(clientId, result);
	}

	private async keysOf(clientId: string, result: KeyringLookupResult): Promise<KeyLookup> {
		switch (result.kind) {
			case "found":
				return { status: "found", keys: await result.client.keys };
			case "absent":
				return this.fallback.keysFor(clientId);
			case "refused":
				return { status: "unknown" };
			case "unavailable":
				return { status: "unavailable" };
		}
	}
}

/**
 * The gateway's key source for `config`: the environment's keys alone without the `KEYRING`
 * binding, else the keyring in `kv` in front of them, even without `KEYRING_KEY` (then an id
 * with a record is refused, 503: a lost key never hands keyring ids to the shared secret). KV's
 * own `cacheTtl` is its minimum, 30 s, whatever the isolate's cache period: a read after a
 * failed signature must find a new secret, not a location's copy as old as the isolate's.
 */
export function keyringKeySource(
	config: KeyringConfig,
	kv: Pick<KVNamespace, "get"> | undefined,
	environment: KeySource,
	deps: { events: KeyringEvents; log: Logger; now?: () => number },
): KeySource {
	if (kv === undefined) return environment;
	const store = new KvKeyringStore(kv, {
		cacheTtlSeconds: KV_MIN_CACHE_TTL_SECONDS,
		timeoutMs: config.timeoutMs,
	});
	const lookup = new KeyringLookup({
		store,
		keys: config.keys.length === 0 ? null : Promise.all(config.keys.map(importKeyringKey)),
		cacheMs: config.cacheMs,
		maxEntries: config.maxEntries,
		joinTimeoutMs: config.timeoutMs + 100,
		events: deps.events,
		log: deps.log,
		now: deps.now,
	});
	return new KeyringKeySource(lookup, environment, config.keys.length > 0);
}
