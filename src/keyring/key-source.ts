import type { KeyLookup, KeySource } from "../auth/crypto.ts";
import type { KeyringConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { KeyringEvents } from "./events.ts";
import { KeyringLookup } from "./lookup.ts";
import { importKeyringKey } from "./sealing.ts";
import { KV_MIN_CACHE_TTL_SECONDS, KvKeyringStore } from "./store.ts";

/**
 * The keyring in KV in front of the environment's secrets (docs/design.md, "Keyring"): an id
 * the keyring names is decided by its record alone (its keys, or refused when disabled,
 * another case of a registered id, or undecryptable: never a shared secret); an id it does
 * not name goes to `HMAC_CLIENTS`/`HMAC_SECRET`; an id it cannot tell about (KV failing, never
 * seen) is `unavailable`: 503, never a pass.
 *
 * @example
 * ```ts
 * const keys = new KeyringKeySource(new KeyringLookup({ store, key, cacheMs: 30_000, maxEntries: 10_000, events, log }), new Keyring(config.auth));
 * const verdict = await verifySignature(keys, "alice", signature, data);
 * ```
 */
export class KeyringKeySource implements KeySource {
	/** The keyring may hold any client: never "no secret configured". */
	readonly configured = true;
	private readonly keyring: Pick<KeyringLookup, "lookup"> & Partial<Pick<KeyringLookup, "cachedClient">>;
	private readonly fallback: KeySource;

	constructor(keyring: Pick<KeyringLookup, "lookup"> & Partial<Pick<KeyringLookup, "cachedClient">>, fallback: KeySource) {
		this.keyring = keyring;
		this.fallback = fallback;
	}

	/**
	 * The limits a client's record carries (the `CLIENT_LIMITS` entry format), or undefined:
	 * asked right after its keys verified, so from this isolate's cache (no read, not counted).
	 */
	limitsFor(clientId: string): Record<string, unknown> | undefined {
		return this.keyring.cachedClient?.(clientId)?.limits;
	}

	async keysFor(clientId: string): Promise<KeyLookup> {
		const result = await this.keyring.lookup(clientId);
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
 * The gateway's key source for `config`: the environment's keys alone while the keyring is
 * off (no `KEYRING_KEY`), else the keyring in `kv` in front of them. KV's own `cacheTtl` is the
 * isolate's cache period, at least KV's minimum of 30 s.
 */
export function keyringKeySource(
	config: KeyringConfig,
	kv: Pick<KVNamespace, "get"> | undefined,
	environment: KeySource,
	deps: { events: KeyringEvents; log: Logger; now?: () => number },
): KeySource {
	if (config.key === null || kv === undefined) return environment;
	const store = new KvKeyringStore(kv, {
		cacheTtlSeconds: Math.max(KV_MIN_CACHE_TTL_SECONDS, Math.ceil(config.cacheMs / 1000)),
		timeoutMs: config.timeoutMs,
	});
	const lookup = new KeyringLookup({
		store,
		key: importKeyringKey(config.key),
		cacheMs: config.cacheMs,
		maxEntries: config.maxEntries,
		joinTimeoutMs: config.timeoutMs + 100,
		events: deps.events,
		log: deps.log,
		now: deps.now,
	});
	return new KeyringKeySource(lookup, environment);
}
