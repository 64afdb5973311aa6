/**
 * The fields of scheme v2 (SPEC section 2b): `Signature-Input`, `Signature` (RFC 9421) and
 * `Content-Digest` (RFC 9530), parsed as Structured Field Values by `structured-headers`
 * (never by hand) and held to the gateway's profile.
 */
import { type BareItem, type InnerList, type Item, parseDictionary } from "structured-headers";
import { signatureParams } from "./http-signature-base.ts";
import { CLIENT_ID_PATTERN } from "./grammar.ts";

export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** A lowercase field name (RFC 9110 token characters). */
const HEADER_NAME_PATTERN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Derived components the profile accepts; `@authority` is the only optional one. */
const REQUIRED_DERIVED = ["@method", "@path", "@query"] as const;
const DERIVED = new Set<string>([...REQUIRED_DERIVED, "@authority"]);
const PARAMETERS = new Set(["created", "keyid", "nonce", "alg", "expires", "tag"]);
export const V2_ALGORITHM = "hmac-sha256";
const SHA256_BYTES = 32;

/** The one `Signature-Input` member, checked against the profile. */
export interface SignatureInput {
	label: string;
	/** Covered component identifiers in their signed order (`@method`, `content-digest`, ...). */
	components: readonly string[];
	/** Integer seconds since the epoch. */
	created: number;
	/** The client id (the v1 grammar). */
	keyid: string;
	nonce: string;
	/** Integer seconds since the epoch, or null when not sent. */
	expires: number | null;
	/** The member serialized as RFC 8941 serializes it: the value of `"@signature-params"`. */
	params: string;
}

export interface SignatureFields {
	input: SignatureInput;
	/** The `Signature` member's bytes (not yet checked: any length may arrive). */
	signature: Uint8Array<ArrayBuffer>;
	/** `Content-Digest`'s `sha-256`, or null when the request sent none (a GET). */
	digest: Uint8Array<ArrayBuffer> | null;
}

/** Why the fields were refused: the answer's code (SPEC 2b steps 1 and 2). */
export type FieldsRefusal = "missing_headers" | "invalid_signature_input" | "invalid_client_id";

export type FieldsResult = { ok: true; fields: SignatureFields } | { ok: false; reason: FieldsRefusal };

export interface FieldsRequest {
	method: string;
	headers: Pick<Headers, "get">;
}

const refuse = (reason: FieldsRefusal): FieldsResult => ({ ok: false, reason });

/**
 * Parses the three fields of a request that carries `Signature-Input` and checks them
 * against the profile: one member each under the same label, the covered components,
 * the parameters and their types, and `sha-256` in `Content-Digest`.
 */
export function parseSignatureFields(request: FieldsRequest): FieldsResult {
	const { headers } = request;
	const inputField = headers.get("signature-input") ?? "";
	const signatureField = headers.get("signature") ?? "";
	const digestField = headers.get("content-digest");
	const isPost = request.method === "POST";
	if (inputField === "" || signatureField === "" || (isPost && (digestField === null || digestField === ""))) {
		return refuse("missing_headers");
	}

	const inputs = parseField(inputField);
	const signatures = parseField(signatureField);
	if (inputs === null || signatures === null || inputs.size !== 1 || signatures.size !== 1) return refuse("invalid_signature_input");
	const [label, member] = inputs.entries().next().value!;
	// Under another label (a mismatch), or members of the wrong kind: refused.
	const signatureMember = signatures.get(label);
	if (!isInnerList(member) || signatureMember === undefined || isInnerList(signatureMember)) return refuse("invalid_signature_input");
	const signature = byteSequence(signatureMember[0]);
	if (signature === null || signatureMember[1].size !== 0) return refuse("invalid_signature_input");

	const components = coveredComponents(member, headers);
	if (components === null) return refuse("invalid_signature_input");
	for (const required of REQUIRED_DERIVED) if (!components.includes(required)) return refuse("invalid_signature_input");
	if (isPost && !components.includes("content-digest")) return refuse("invalid_signature_input");

	const params = member[1];
	for (const name of params.keys()) if (!PARAMETERS.has(name)) return refuse("invalid_signature_input");
	const created = params.get("created");
	const keyid = params.get("keyid");
	const nonce = params.get("nonce");
	const alg = params.get("alg");
	const expires = params.get("expires");
	const tag = params.get("tag");
	if (!isSeconds(created) || typeof keyid !== "string" || typeof nonce !== "string" || !NONCE_PATTERN.test(nonce)) {
		return refuse("invalid_signature_input");
	}
	if (alg !== undefined && alg !== V2_ALGORITHM) return refuse("invalid_signature_input");
	if (expires !== undefined && !isSeconds(expires)) return refuse("invalid_signature_input");
	if (tag !== undefined && typeof tag !== "string") return refuse("invalid_signature_input");

	let digest: Uint8Array<ArrayBuffer> | null = null;
	if (digestField !== null) {
		digest = sha256Digest(digestField);
		if (digest === null) return refuse("invalid_signature_input");
	}

	// Checked after the profile, so a malformed field is 400 whatever its keyid.
	if (!CLIENT_ID_PATTERN.test(keyid)) return refuse("invalid_client_id");

	let serialized: string;
	try {
		serialized = signatureParams(member);
	} catch {
		// Whatever the parser accepted serializes; should a future version differ, a refusal, never a 500.
		return refuse("invalid_signature_input");
	}

	return {
		ok: true,
		fields: {
			input: {
				label,
				components,
				created,
				keyid,
				nonce,
				expires: expires === undefined ? null : (expires as number),
				params: serialized,
			},
			signature,
			digest,
		},
	};
}

/** `Content-Digest`'s `sha-256` member as 32 bytes, or null (unparseable, absent, wrong type or length). */
export function sha256Digest(field: string): Uint8Array<ArrayBuffer> | null {
	const members = parseField(field);
	const member = members?.get("sha-256");
	if (member === undefined || isInnerList(member)) return null;
	const bytes = byteSequence(member[0]);
	return bytes !== null && bytes.byteLength === SHA256_BYTES ? bytes : null;
}

function parseField(field: string): Map<string, Item | InnerList> | null {
	try {
		return parseDictionary(field);
	} catch {
		// The parser's message can quote the field: never passed on.
		return null;
	}
}

/** The covered components: sf-strings without parameters, each once, each one the profile allows. */
function coveredComponents(member: InnerList, headers: Pick<Headers, "get">): string[] | null {
	const components: string[] = [];
	for (const [name, componentParams] of member[0]) {
		// `;sf`, `;key`, `;bs`, `;req`, `;tr` and any other component parameter: outside the profile.
		if (typeof name !== "string" || componentParams.size !== 0 || components.includes(name)) return null;
		if (name.startsWith("@")) {
			if (!DERIVED.has(name)) return null;
		} else if (!HEADER_NAME_PATTERN.test(name) || headers.get(name) === null) {
			return null;
		}
		components.push(name);
	}
	return components;
}

function isInnerList(member: Item | InnerList): member is InnerList {
	return Array.isArray(member[0]);
}

function byteSequence(value: BareItem): Uint8Array<ArrayBuffer> | null {
	return value instanceof ArrayBuffer ? new Uint8Array(value) : null;
}

/** Integer seconds: the parser gives integers and decimals both as numbers. */
function isSeconds(value: BareItem | undefined): value is number {
	return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
