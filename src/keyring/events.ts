/**
 * What a keyring lookup reports (the `result` label of `agent_keyring_lookups_total`). Each
 * lookup counts one of `hit` (the keyring has a record for the id, from the isolate's cache or
 * from KV), `miss` (it has none), `undecryptable` (a record that does not open: refused) or
 * `throttled` (too many unknown ids this second: 503); each KV read counts `kv_read`, and a
 * failed one also `kv_error`. A lookup KV failed for and nothing was known of: `kv_error` only.
 */
export const KEYRING_LOOKUP_RESULTS = ["hit", "miss", "kv_read", "kv_error", "undecryptable", "throttled"] as const;
export type KeyringLookupEvent = (typeof KEYRING_LOOKUP_RESULTS)[number];

export interface KeyringEvents {
	keyringLookup(result: KeyringLookupEvent): void;
}
