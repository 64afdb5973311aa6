import { SIGNATURE_SCHEMES, type SignatureScheme } from "../events.ts";

/** `SIGNATURE_SCHEMES` when unset: both, until the existing clients have moved to v2. */
export const DEFAULT_SIGNATURE_SCHEMES: readonly SignatureScheme[] = SIGNATURE_SCHEMES;

/**
 * `SIGNATURE_SCHEMES`: a comma-separated list of `v1` and `v2` (each at most once), or
 * null when it names anything else or nothing.
 */
export function parseSignatureSchemes(value: string | undefined): readonly SignatureScheme[] | null {
	if (value === undefined) return DEFAULT_SIGNATURE_SCHEMES;
	const names = value.split(",").map((name) => name.trim());
	const schemes = SIGNATURE_SCHEMES.filter((scheme) => names.includes(scheme));
	return schemes.length === names.length && schemes.length > 0 ? schemes : null;
}
