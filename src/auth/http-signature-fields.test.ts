import { describe, expect, it } from "vitest";
import { parseSignatureFields } from "./http-signature-fields.ts";

const SIG = `:${btoa("s".repeat(32))}:`;
const DIGEST = `:${btoa("d".repeat(32))}:`;
const COVERED = '"@method" "@path" "@query" "content-digest"';
const PARAMS = 'created=1764158400;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"';

interface Fields {
	method?: string;
	input?: string | null;
	signature?: string | null;
	digest?: string | null;
	extra?: Record<string, string>;
}

function parse({ method = "POST", input = `sig1=(${COVERED});${PARAMS}`, signature = `sig1=${SIG}`, digest = `sha-256=${DIGEST}`, extra = {} }: Fields) {
	const headers = new Headers(extra);
	if (input !== null) headers.set("signature-input", input);
	if (signature !== null) headers.set("signature", signature);
	if (digest !== null) headers.set("content-digest", digest);
	const result = parseSignatureFields({ method, headers });
	return result.ok ? "ok" : `${result.code}: ${result.field} ${result.rule}`;
}

const input = (covered: string, params = PARAMS) => `sig1=(${covered});${params}`;

describe("parseSignatureFields: the profile of docs/design.md, Scheme v2", () => {
	it("reads a valid member: components, parameters and the serialized member", () => {
		const headers = new Headers({
			"signature-input": `sig1=(${COVERED} "content-type");${PARAMS};alg="hmac-sha256";expires=1764158700;tag="app"`,
			signature: `sig1=${SIG}`,
			"content-digest": `sha-512=:AAAA:, sha-256=${DIGEST}`,
			"content-type": "application/json",
		});
		const result = parseSignatureFields({ method: "POST", headers });
		expect(result).toEqual({
			ok: true,
			fields: {
				input: {
					label: "sig1",
					components: ["@method", "@path", "@query", "content-digest", "content-type"],
					created: 1764158400,
					keyid: "web-app",
					nonce: "q1w2e3r4t5y6u7i8o9p0aa",
					expires: 1764158700,
					params: `(${COVERED} "content-type");${PARAMS};alg="hmac-sha256";expires=1764158700;tag="app"`,
				},
				signature: new Uint8Array(32).fill(115),
				digest: new Uint8Array(32).fill(100),
			},
		});
	});

	it.each<[string, Fields, string]>([
		["valid POST", {}, "ok"],
		["valid GET without Content-Digest", { method: "GET", input: input('"@method" "@path" "@query"'), digest: null }, "ok"],
		["GET covering a Content-Digest it sends", { method: "GET" }, "ok"],
		["@authority and a present header", { input: input(`"@authority" ${COVERED} "x-app"`), extra: { "x-app": "1" } }, "ok"],
		["nonce of 16", { input: input(COVERED, 'created=1;keyid="a";nonce="abcdefghijklmnop"') }, "ok"],
		["nonce of 64", { input: input(COVERED, `created=1;keyid="a";nonce="${"n".repeat(64)}"`) }, "ok"],
		["created 0", { input: input(COVERED, 'created=0;keyid="a";nonce="abcdefghijklmnop"') }, "ok"],
		["a tag whose text looks like a decimal parameter", { input: input(COVERED, `${PARAMS};tag="x;created=1.0"`) }, "ok"],
		["other digest algorithms beside sha-256", { digest: `md5=:AAAA:, sha-256=${DIGEST}, unknown=?1` }, "ok"],

		["no Signature", { signature: null }, 'missing_headers: Signature is missing'],
		["an empty Signature", { signature: "" }, 'missing_headers: Signature is missing'],
		["an empty Signature-Input", { input: "" }, 'missing_headers: Signature-Input is missing'],
		["a POST without Content-Digest", { digest: null }, 'missing_headers: Content-Digest is missing (required on a POST)'],
		["a POST with an empty Content-Digest", { digest: "" }, 'missing_headers: Content-Digest is missing (required on a POST)'],

		["unparseable Signature-Input", { input: "sig1=(" }, 'invalid_signature_input: Signature-Input must be a Structured Field dictionary (RFC 8941)'],
		["unparseable Signature", { signature: "sig1=:::" }, 'invalid_signature_input: Signature must be a Structured Field dictionary (RFC 8941)'],
		["unparseable Content-Digest", { digest: "sha-256=:" }, 'invalid_signature_input: Content-Digest must be a Structured Field dictionary (RFC 8941)'],
		["two Signature-Input members", { input: `${input(COVERED)}, sig2=(${COVERED});${PARAMS}` }, 'invalid_signature_input: Signature-Input must hold exactly one signature'],
		["two Signature members", { signature: `sig1=${SIG}, sig2=${SIG}` }, 'invalid_signature_input: Signature must hold exactly one signature'],
		["a label twice in Signature-Input, the first naming another keyid", { input: `${input(COVERED, 'created=1;keyid="other";nonce="q1w2e3r4t5y6u7i8o9p0aa"')}, ${input(COVERED)}` }, "invalid_signature_input: Signature-Input must not name a label twice"],
		["a label twice in Signature-Input, as two joined lines without a space", { input: `${input(COVERED)},${input(COVERED)}` }, "invalid_signature_input: Signature-Input must not name a label twice"],
		["a label twice in Signature", { signature: `sig1=${SIG}, sig1=${SIG}` }, "invalid_signature_input: Signature must not name a label twice"],
		["a label twice in Signature, a tab after the comma", { signature: `sig1=:AAAA:,\tsig1=${SIG}` }, "invalid_signature_input: Signature must not name a label twice"],
		["sha-256 twice in Content-Digest", { digest: `sha-256=:${btoa("x".repeat(32))}:, sha-256=${DIGEST}` }, "invalid_signature_input: Content-Digest must not name an algorithm twice"],
		["a tag holding a comma and a label's text is one member", { input: input(COVERED, `${PARAMS};tag="a, sig1=(), \\"b, sig1"`) }, "ok"],
		["a label mismatch", { signature: `sig2=${SIG}` }, 'invalid_signature_input: Signature must use the label of Signature-Input'],
		["Signature-Input member not an inner list", { input: `sig1="@method";${PARAMS}` }, 'invalid_signature_input: Signature-Input must hold an inner list of covered components'],
		["Signature member an inner list", { signature: `sig1=(${SIG})` }, 'invalid_signature_input: Signature must be a byte sequence without parameters'],
		["Signature member a string", { signature: 'sig1="abc"' }, 'invalid_signature_input: Signature must be a byte sequence without parameters'],
		["Signature member with a parameter", { signature: `sig1=${SIG};x=1` }, 'invalid_signature_input: Signature must be a byte sequence without parameters'],

		["no @method", { input: input('"@path" "@query" "content-digest"') }, 'invalid_signature_input: Signature-Input must cover "@method"'],
		["no @path", { input: input('"@method" "@query" "content-digest"') }, 'invalid_signature_input: Signature-Input must cover "@path"'],
		["no @query", { input: input('"@method" "@path" "content-digest"') }, 'invalid_signature_input: Signature-Input must cover "@query"'],
		["a POST not covering content-digest", { input: input('"@method" "@path" "@query"') }, 'invalid_signature_input: Signature-Input must cover "content-digest" on a POST'],
		["a component as a token", { input: input('"@method" "@path" "@query" content-digest') }, 'invalid_signature_input: Signature-Input must list components as strings'],
		...["sf", "key=\"a\"", "bs", "req", "tr"].map((param): [string, Fields, string] => [
			`a component parameter ;${param}`,
			{ input: input(`"@method" "@path" "@query" "content-digest";${param}`) },
			"invalid_signature_input: Signature-Input components must not have parameters",
		]),
		...["@target-uri", "@request-target", "@status", "@scheme", "@query-param", "@signature-params"].map((name): [string, Fields, string] => [
			`the derived component ${name}`,
			{ input: input(`${COVERED} "${name}"`) },
			'invalid_signature_input: Signature-Input may cover only "@method", "@path", "@query" and "@authority" of the derived components',
		]),
		["an uppercase header name", { input: input(`${COVERED} "Content-Type"`), extra: { "content-type": "a" } }, 'invalid_signature_input: Signature-Input must name covered headers in lowercase'],
		["a header the request lacks", { input: input(`${COVERED} "x-absent"`) }, 'invalid_signature_input: Signature-Input must cover only headers the request carries'],
		// Its value holds the signature being made: no client can ever produce it, so 400 rather than a 403 that sends the client to its signature base.
		["the Signature field itself", { input: input(`${COVERED} "signature"`) }, 'invalid_signature_input: Signature-Input must not cover "signature" (a signature cannot sign itself)'],
		["a component twice", { input: input(`${COVERED} "@method"`) }, 'invalid_signature_input: Signature-Input must cover each component once'],
		["an empty component", { input: input(`${COVERED} ""`) }, 'invalid_signature_input: Signature-Input must name covered headers in lowercase'],

		["an unknown parameter", { input: input(COVERED, `${PARAMS};foo="x"`) }, 'invalid_signature_input: Signature-Input parameter "foo" is not one of created, keyid, nonce, alg, expires or tag'],
		["an unknown parameter before the known ones", { input: input(COVERED, `x-y.z*1=1;${PARAMS}`) }, 'invalid_signature_input: Signature-Input parameter "x-y.z*1" is not one of created, keyid, nonce, alg, expires or tag'],
		["an unknown parameter with a long name, named cut short", { input: input(COVERED, `${PARAMS};${"p".repeat(40)}=1`) }, `invalid_signature_input: Signature-Input parameter "${"p".repeat(32)}..." is not one of created, keyid, nonce, alg, expires or tag`],
		["an unknown parameter of 32 characters, named whole", { input: input(COVERED, `${PARAMS};${"p".repeat(32)}=1`) }, `invalid_signature_input: Signature-Input parameter "${"p".repeat(32)}" is not one of created, keyid, nonce, alg, expires or tag`],
		["an unknown parameter of 33 characters, named cut short", { input: input(COVERED, `${PARAMS};${"p".repeat(33)}=1`) }, `invalid_signature_input: Signature-Input parameter "${"p".repeat(32)}..." is not one of created, keyid, nonce, alg, expires or tag`],
		["no created", { input: input(COVERED, 'keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["created as a string", { input: input(COVERED, 'created="1";keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["created as a decimal", { input: input(COVERED, 'created=1.5;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["created as a whole decimal (read as the integer by the library)", { input: input(COVERED, 'created=1764158400.0;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["created as a whole decimal after a space (RFC 8941 allows spaces after ;)", { input: input(COVERED, 'keyid="web-app"; created=1764158400.0;nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["expires as a whole decimal after spaces", { input: input(COVERED, `${PARAMS};   expires=1764158700.0`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["expires as a whole decimal", { input: input(COVERED, `${PARAMS};expires=1764158700.000`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["created with a leading zero (read as the integer by the library)", { input: input(COVERED, 'created=01764158400;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["expires with a leading zero", { input: input(COVERED, `${PARAMS};expires=01764158700`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["created negative", { input: input(COVERED, 'created=-1;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["created as a negative zero (read as 0 by the library, serialized as 0)", { input: input(COVERED, 'created=-0;keyid="web-app";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: created must be integer seconds since the epoch'],
		["expires as a negative zero", { input: input(COVERED, `${PARAMS};expires=-0`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["no keyid", { input: input(COVERED, 'created=1;nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: keyid must be a string: the client id'],
		["keyid as a token", { input: input(COVERED, 'created=1;keyid=web-app;nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_signature_input: keyid must be a string: the client id'],
		["no nonce", { input: input(COVERED, 'created=1;keyid="web-app"') }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
		["a nonce of 15", { input: input(COVERED, 'created=1;keyid="a";nonce="abcdefghijklmno"') }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
		["a nonce of 65", { input: input(COVERED, `created=1;keyid="a";nonce="${"n".repeat(65)}"`) }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
		["a nonce with a dot", { input: input(COVERED, 'created=1;keyid="a";nonce="abcdefghijklmnop."') }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
		["a nonce as bytes", { input: input(COVERED, 'created=1;keyid="a";nonce=:AAAAAAAAAAAAAAAAAAAAAAAA:') }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
		["another alg", { input: input(COVERED, `${PARAMS};alg="hmac-sha512"`) }, 'invalid_signature_input: alg must be "hmac-sha256"'],
		["alg as a token", { input: input(COVERED, `${PARAMS};alg=hmac-sha256`) }, 'invalid_signature_input: alg must be "hmac-sha256"'],
		["expires as a string", { input: input(COVERED, `${PARAMS};expires="1"`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["expires as a decimal", { input: input(COVERED, `${PARAMS};expires=1.5`) }, 'invalid_signature_input: expires must be integer seconds since the epoch'],
		["created twice (the library keeps the last)", { input: input(COVERED, `${PARAMS};created=1764158401`) }, 'invalid_signature_input: created must appear once'],
		["a tag twice", { input: input(COVERED, `${PARAMS};tag="a";tag="b"`) }, 'invalid_signature_input: tag must appear once'],
		["tag as an integer", { input: input(COVERED, `${PARAMS};tag=1`) }, 'invalid_signature_input: tag must be a string'],
		["tag bare (true)", { input: input(COVERED, `${PARAMS};tag`) }, 'invalid_signature_input: tag must be a string'],

		["no sha-256 in Content-Digest", { digest: "sha-512=:AAAA:" }, 'invalid_signature_input: Content-Digest must hold sha-256'],
		["a sha-256 of 31 bytes", { digest: `sha-256=:${btoa("d".repeat(31))}:` }, 'invalid_signature_input: Content-Digest sha-256 must be a byte sequence of 32 bytes'],
		["a sha-256 of 33 bytes", { digest: `sha-256=:${btoa("d".repeat(33))}:` }, 'invalid_signature_input: Content-Digest sha-256 must be a byte sequence of 32 bytes'],
		["a sha-256 that is not bytes", { digest: 'sha-256="abc"' }, 'invalid_signature_input: Content-Digest sha-256 must be a byte sequence of 32 bytes'],
		["a sha-256 inner list", { digest: `sha-256=(${DIGEST})` }, 'invalid_signature_input: Content-Digest sha-256 must be a byte sequence of 32 bytes'],

		["keyid outside the grammar", { input: input(COVERED, 'created=1;keyid="bad id";nonce="q1w2e3r4t5y6u7i8o9p0aa"') }, 'invalid_client_id: keyid must be 1 to 64 characters of A-Z a-z 0-9 . _ -'],
		["keyid of 65", { input: input(COVERED, `created=1;keyid="${"k".repeat(65)}";nonce="q1w2e3r4t5y6u7i8o9p0aa"`) }, 'invalid_client_id: keyid must be 1 to 64 characters of A-Z a-z 0-9 . _ -'],
		["keyid outside the grammar in a field outside the profile", { input: input(COVERED, 'created=1;keyid="bad id";nonce="short"') }, 'invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -'],
	])("%s", (_name, fields, expected) => {
		expect(parse(fields)).toBe(expected);
	});
});
