import { signedPath } from "../auth/crypto.ts";

/**
 * The path a signer is given (docs/design.md, "Scheme v1" and "Scheme v2"): the URL path without
 * its query. A query in it would be signed where the gateway never reads it, so every such
 * request would be 403; refused before signing instead.
 */
export function pathWithoutQuery(path: string): string {
	if (path.includes("?")) throw new Error("signRequest: path must not hold the query (v1 does not sign it; v2 takes it as query)");
	return path;
}

/** v1 signs the path after the `/api` alias, as the gateway verifies it. */
export function v1SignedPath(path: string): string {
	return signedPath(pathWithoutQuery(path));
}
