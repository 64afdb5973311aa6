// What `npm run keys` needs of a KV namespace, wherever it is: the local files of `npm run dev`
// (keyring-local-files.ts), Miniflare, or a deployed namespace through wrangler
// (keyring-namespace.ts).

/** The few KV operations the admin CLI needs; values are the records' JSON text. */
export interface AdminNamespace {
	/** Values of `keys` (null for a key it does not hold), in order. */
	getMany(keys: readonly string[]): Promise<(string | null)[]>;
	put(key: string, value: string): Promise<void>;
	/** Several values at once (one wrangler command for a deployment). */
	putMany(entries: readonly { key: string; value: string }[]): Promise<void>;
	delete(key: string): Promise<void>;
	/** Every key starting with `prefix`. */
	list(prefix: string): Promise<string[]>;
	close(): Promise<void>;
}
