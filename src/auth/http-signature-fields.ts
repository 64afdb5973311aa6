/**
 * The fields of scheme v2 (docs/design.md, "Scheme v2"): `Signature-Input`, `Signature`
 * (RFC 9421) and `Content-Digest` (RFC 9530), parsed as Structured Field Values by
 * `structured-headers` (never by hand) and held to the gateway's profile. Each refusal names
 * the field and the rule, never the value.
 */
import type { BareItem, InnerList, Item } from "structured-headers";
import { parseDictionaryWithNames, repeatedParameters, respelledNumbers } from "./dictionary-members.ts";
import { signatureParams } from "./http-signature-base.ts";
import { CLIENT_ID_PATTERN, CLIENT_ID_RULE } from "./grammar.ts";
import { refuse, type Refusal } from "./signature-auth.ts";

export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** A lowercase field name (RFC 9110 token characters). */
const HEADER_NAME_PATTERN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Derived components the profile accepts; `@authority` is the only optional one. */
const REQUIRED_DERIVED = ["@method", "@path", "@query"] as const;
const DERIVED = new Set<string>([...REQUIRED_DERIVED, "@authority"]);
const PARAMETERS = new Set(["created", "keyid", "nonce", "alg", "expires", "tag"]);
export const V2_ALGORITHM = "hmac-sha256";
const SHA256_BYTES = 32;

const INPUT = "Signature-Input";
const SIGNATURE = "Signature";
const DIGEST = "Content-Digest";
const SECONDS_RULE = "must be integer seconds since the epoch";
/** The longest parameter name a refusal quotes (a key is only `a-z 0-9 _ - . *`, so it can hold no secret). */
const NAME_SHOWN = 32;

/** A parameter name as a refusal names it: quoted, and cut short when long. */
function parameterName(name: string): string {
	return name.length > NAME_SHOWN ? `"${name.slice(0, NAME_SHOWN)}..."` : `"${name}"`;
}

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

export interface FieldsRequest {
	method: string;
	headers: Pick<Headers, "get">;
}

const invalid = (field: string, rule: string): Refusal => refuse("invalid_signature_input", field, rule);

/**
 * Parses the three fields of a request that carries `Signature-Input` and checks them
 * against the profile: one member each under the same label, no name twice, the covered
 * components, the parameters and their types, `sha-256` in `Content-Digest`, then the keyid.
 */
export function parseSignatureFields(request: FieldsRequest): { ok: true; fields: SignatureFields } | Refusal {
	const { headers } = request;
	const inputField = headers.get("signature-input") ?? "";
	const signatureField = headers.get("signature") ?? "";
	const digestField = headers.get("content-digest") ?? "";
	const isPost = request.method === "POST";
	if (inputField === "") return refuse("missing_headers", INPUT, "is missing");
	if (signatureField === "") return refuse("missing_headers", SIGNATURE, "is missing");
	if (isPost && digestField === "") return refuse("missing_headers", DIGEST, "is missing (required on a POST)");

	const inputs = dictionary(inputField, INPUT, "must not name a label twice");
	if (!(inputs instanceof Map)) return inputs;
	const signatures = dictionary(signatureField, SIGNATURE, "must not name a label twice");
	if (!(signatures instanceof Map)) return signatures;
	if (inputs.size !== 1) return invalid(INPUT, "must hold exactly one signature");
	if (signatures.size !== 1) return invalid(SIGNATURE, "must hold exactly one signature");
	const [label, member] = inputs.entries().next().value!;
	if (!isInnerList(member)) return invalid(INPUT, "must hold an inner list of covered components");
	const signatureMember = signatures.get(label);
	if (signatureMember === undefined) return invalid(SIGNATURE, "must use the label of Signature-Input");
	const signature = isInnerList(signatureMember) ? null : byteSequence(signatureMember[0]);
	if (signature === null || signatureMember[1].size !== 0) return invalid(SIGNATURE, "must be a byte sequence without parameters");

	const components = coveredComponents(member, headers);
	if (!Array.isArray(components)) return components;
	for (const required of REQUIRED_DERIVED) if (!components.includes(required)) return invalid(INPUT, `must cover "${required}"`);
	if (isPost && !components.includes("content-digest")) return invalid(INPUT, 'must cover "content-digest" on a POST');

	const params = member[1];
	for (const name of params.keys()) if (!PARAMETERS.has(name)) return invalid(`${INPUT} parameter ${parameterName(name)}`, "is not one of created, keyid, nonce, alg, expires or tag");
	const [repeated] = repeatedParameters(inputField);
	if (repeated !== undefined) return invalid(repeated, "must appear once");
	const created = params.get("created");
	const keyid = params.get("keyid");
	const nonce = params.get("nonce");
	const alg = params.get("alg");
	const expires = params.get("expires");
	const tag = params.get("tag");
	const respelled = respelledNumbers(inputField);
	if (!isSeconds(created) || respelled.has("created")) return invalid("created", SECONDS_RULE);
	if (typeof keyid !== "string") return invalid("keyid", "must be a string: the client id");
	if (typeof nonce !== "string" || !NONCE_PATTERN.test(nonce)) return invalid("nonce", "must be 16 to 64 characters of A-Z a-z 0-9 _ -");
	if (alg !== undefined && alg !== V2_ALGORITHM) return invalid("alg", `must be "${V2_ALGORITHM}"`);
	if (expires !== undefined && (!isSeconds(expires) || respelled.has("expires"))) return invalid("expires", SECONDS_RULE);
	if (tag !== undefined && typeof tag !== "string") return invalid("tag", "must be a string");

	let digest: Uint8Array<ArrayBuffer> | null = null;
	if (digestField !== "") {
		const sha256 = sha256Member(digestField);
		if (!(sha256 instanceof Uint8Array)) return sha256;
		digest = sha256;
	}

	// Checked after the profile, so a malformed field is 400 whatever its keyid.
	if (!CLIENT_ID_PATTERN.test(keyid)) return refuse("invalid_client_id", "keyid", CLIENT_ID_RULE);

	let serialized: string;
	try {
		serialized = signatureParams(member);
	} catch {
		// Whatever the parser accepted serializes; should a future version differ, a refusal, never a 500.
		return invalid(INPUT, "must be a Structured Field dictionary (RFC 8941)");
	}
	const input = { label, components, created, keyid, nonce, expires: expires === undefined ? null : (expires as number), params: serialized };
	return { ok: true, fields: { input, signature, digest } };
}

/** `Content-Digest`'s `sha-256` member as 32 bytes, or why not. */
export function sha256Member(field: string): Uint8Array<ArrayBuffer> | Refusal {
	const members = dictionary(field, DIGEST, "must not name an algorithm twice");
	if (!(members instanceof Map)) return members;
	const member = members.get("sha-256");
	if (member === undefined) return invalid(DIGEST, "must hold sha-256");
	const bytes = isInnerList(member) ? null : byteSequence(member[0]);
	return bytes !== null && bytes.byteLength === SHA256_BYTES ? bytes : invalid(DIGEST, "sha-256 must be a byte sequence of 32 bytes");
}

/** A field parsed as a dictionary, refused when it does not parse or repeats a member name. */
function dictionary(field: string, name: string, repeatRule: string): Map<string, Item | InnerList> | Refusal {
	const parsed = parseDictionaryWithNames(field);
	if (parsed === null) return invalid(name, "must be a Structured Field dictionary (RFC 8941)");
	if (new Set(parsed.names).size !== parsed.names.length) return invalid(name, repeatRule);
	return parsed.dictionary;
}

/** The covered components: sf-strings without parameters, each once, each one the profile allows. */
function coveredComponents(member: InnerList, headers: Pick<Headers, "get">): string[] | Refusal {
	const components: string[] = [];
	for (const [name, componentParams] of member[0]) {
		if (typeof name !== "string") return invalid(INPUT, "must list components as strings");
		// `;sf`, `;key`, `;bs`, `;req`, `;tr` and any other component parameter: outside the profile.
		if (componentParams.size !== 0) return invalid(INPUT, "components must not have parameters");
		if (components.includes(name)) return invalid(INPUT, "must cover each component once");
		if (name.startsWith("@")) {
			if (!DERIVED.has(name)) return invalid(INPUT, 'may cover only "@method", "@path", "@query" and "@authority" of the derived components');
		} else if (!HEADER_NAME_PATTERN.test(name)) {
			return invalid(INPUT, "must name covered headers in lowercase");
		} else if (name === "signature") {
			// Its value is the signature being made: no client can produce it, so say so rather than answer 403.
			return invalid(INPUT, 'must not cover "signature" (a signature cannot sign itself)');
		} else if (headers.get(name) === null) {
			return invalid(INPUT, "must cover only headers the request carries");
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
