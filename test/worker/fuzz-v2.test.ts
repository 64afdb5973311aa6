import { describe, expect, it } from "vitest";
import { seededRandom } from "../fixtures/random.ts";
import { signedV2Init } from "../fixtures/signed.ts";
import { CLIENT_ID, harness, SECRET } from "./harness.ts";

type Rng = ReturnType<typeof seededRandom>;

const NOW = 1_763_000_000_000;
const CREATED = NOW / 1000;
const COMPONENTS = ['"@method"', '"@path"', '"@query"', '"content-digest"', '"@authority"', '"content-type"', '"@target-uri"', '"@request-target"', '"@status"', '"x-missing"', '"Content-Type"', "@method", '"@query";req', '"content-digest";sf', '"@query-param";name="a"', '""', "?1", ":AAAA:", "1.5"];
const LABELS = ["sig1", "sig1", "sig1", "sig2", "*", "a-b.c*", "x".repeat(300), "Sig1", "1sig", "", "sig 1", "SIG", "sig1;x"];
const PARAMS = [
	`created=${CREATED}`,
	`created=${CREATED}.5`,
	`created=-${CREATED}`,
	`created="${CREATED}"`,
	"created=999999999999999",
	"created=9999999999999999",
	`created=@${CREATED}`,
	`keyid="${CLIENT_ID}"`,
	`keyid=${CLIENT_ID}`,
	'keyid="has space"',
	`keyid="${"k".repeat(65)}"`,
	'keyid=""',
	'keyid="\\"quoted\\""',
	'nonce="fuzz-nonce-0000000000"',
	'nonce="short"',
	`nonce="${"n".repeat(65)}"`,
	"nonce=:AAAAAAAAAAAAAAAAAAAAAAAA:",
	'alg="hmac-sha256"',
	'alg="rsa-pss-sha512"',
	"alg=hmac-sha256",
	`expires=${CREATED + 60}`,
	`expires=${CREATED - 60}`,
	"expires=?1",
	'tag="app"',
	"tag=1",
	"tag",
	'unknown="x"',
	"created",
	'keyid=%"caf%c3%a9"',
];

function innerList(rng: Rng): string {
	switch (rng.int(6)) {
		case 0:
			// A huge list.
			return `(${Array.from({ length: 200 + rng.int(2000) }, () => rng.pick(COMPONENTS)).join(" ")})`;
		case 1:
			return rng.pick(['"@method"', "()", "(", '("@method" "@path"', "(\"@method\"  \"@path\")", "(\t\"@method\")"]);
		default: {
			const picked = ['"@method"', '"@path"', '"@query"', '"content-digest"'].filter(() => rng.int(8) !== 0);
			for (let i = rng.int(3); i > 0; i--) picked.splice(rng.int(picked.length + 1), 0, rng.pick(COMPONENTS));
			return `(${picked.join(" ")})`;
		}
	}
}

function signatureInput(rng: Rng, valid: string): string {
	switch (rng.int(8)) {
		case 0:
			return valid;
		case 1: {
			// One character of the valid field replaced, removed or doubled.
			const at = rng.int(valid.length);
			const char = rng.pick([";", "=", '"', "(", ")", ",", " ", ":", "\\", "\x7f", "~", valid[at]!]);
			return rng.pick([valid.slice(0, at) + char + valid.slice(at + 1), valid.slice(0, at) + valid.slice(at + 1), valid.slice(0, at) + char + valid.slice(at)]);
		}
		case 2:
			return `${valid}, ${rng.pick(LABELS)}=${innerList(rng)}`;
		default: {
			const params = Array.from({ length: rng.int(7) }, () => rng.pick(PARAMS)).join(";");
			return `${rng.pick(LABELS)}=${innerList(rng)}${params === "" ? "" : `;${params}`}`;
		}
	}
}

/** Never the true signature: the fuzz must not make an accepted request by chance. */
function signature(rng: Rng, label: string): string {
	switch (rng.int(9)) {
		case 0:
			return `${label}=:${rng.base64(32)}:`;
		case 1:
			return `${label}=:${rng.base64(rng.int(200))}:`;
		case 2:
			return `${rng.pick(LABELS)}=:${rng.base64(32)}:`;
		case 3:
			return `${label}=:${rng.base64(32)}:, ${label}2=:${rng.base64(32)}:`;
		case 4:
			return `${label}=${rng.pick(["token", '"string"', "1", "?0", "(:AAAA:)", ":not base64!:", ":AAA", "::", `:${rng.base64(32)}:;p=1`])}`;
		case 5:
			return `${label}=:${"A".repeat(8_000 + rng.int(8_000))}:`;
		default:
			return `${label}=:${rng.base64(32)}:`;
	}
}

function contentDigest(rng: Rng, valid: string | undefined): string | null {
	switch (rng.int(9)) {
		case 0:
			return null;
		case 1:
			return `sha-256=:${rng.base64(32)}:`;
		case 2:
			return `sha-512=:${rng.base64(64)}:`;
		case 3:
			return rng.pick(["sha-256=:AAAA:", "sha-256=abc", "sha-256", "sha-256=(:AAAA:)", "SHA-256=:AAAA:", "sha-256=:====:", ":AAAA:", `sha-256=:${rng.base64(32)}:, sha-256=1`]);
		case 4:
			return `${valid ?? `sha-256=:${rng.base64(32)}:`}, ${"md5=:AAAA:, ".repeat(rng.int(400))}id-sha-256=:AAAA:`;
		default:
			return valid ?? null;
	}
}

describe("v2 field fuzzing", () => {
	it("10,000 generated Signature-Input/Signature/Content-Digest values: never a 5xx, never accepted, no origin or Upstash call", async () => {
		const h = harness({ MAX_BODY_BYTES: "65536", HMAC_CLIENTS: JSON.stringify({ [CLIENT_ID]: SECRET }) });
		h.clock.now = NOW;
		const rng = seededRandom(20261126);
		const statuses = new Map<number, number>();
		const codes = new Set<string>();
		const details = new Set<string>();
		const failures: string[] = [];
		const total = 10_000;
		const templates = await Promise.all(
			(["POST", "GET"] as const).map(async (method) => {
				const { init } = await signedV2Init({ method, path: method === "GET" ? "/agent/stream" : "/agent/chat", body: "{}" }, { clientId: CLIENT_ID, secret: SECRET, created: CREATED });
				return { method, input: init.headers["signature-input"]!, digest: init.headers["content-digest"] };
			}),
		);
		for (let batch = 0; batch < total; batch += 200) {
			await Promise.all(
				Array.from({ length: 200 }, async (_, offset) => {
					const index = batch + offset;
					const template = rng.pick(templates);
					const { method } = template;
					const path = rng.pick(method === "GET" ? ["/agent/stream", "/agent/stream?q=1"] : ["/agent/chat", "/api/agent/chat", "/agent/chat%2F"]);
					const input = signatureInput(rng, template.input);
					const label = /^[a-z*][a-z0-9_.*-]*/.exec(input)?.[0] ?? "sig1";
					const headers = new Headers();
					try {
						headers.set("Signature-Input", input);
						headers.set("Signature", signature(rng, label));
						const digest = contentDigest(rng, template.digest);
						if (digest !== null) headers.set("Content-Digest", digest);
						if (rng.int(3) === 0) headers.set("Content-Type", "application/json");
					} catch {
						// The runtime refuses some values outright (as a client library would).
					}
					const request = new Request(`https://gateway.test${path}`, { method, headers, body: method === "POST" ? "{}" : undefined });
					const response = await h.fetch(request);
					statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
					if (response.status < 400 || response.status >= 500) {
						failures.push(`#${index} ${method} ${path} ${JSON.stringify([...headers])} -> ${response.status}`);
						return;
					}
					const body = (await response.json()) as { code?: unknown; detail?: unknown };
					if (typeof body.code !== "string" || typeof body.detail !== "string") failures.push(`#${index}: not the error shape`);
					else {
						codes.add(body.code);
						details.add(`${body.code}: ${withoutParameterName(body.detail, input, failures, index)}`);
					}
				}),
			);
		}
		expect(failures).toEqual([]);
		expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(total);
		expect(h.origin.requests).toHaveLength(0);
		expect(h.redis.calls).toHaveLength(0);
		// Every refusal before the signature was reached, and the signature check itself.
		expect([...codes].sort()).toEqual(["bad_signature", "invalid_client_id", "invalid_path", "invalid_signature_input", "missing_headers"]);
		// Every answer names a field and its rule from a fixed set: nothing the client sent is quoted but an unknown parameter's name.
		expect([...details].sort()).toEqual([
			"bad_signature: Signature must be 32 bytes (an HMAC-SHA256)",
			"bad_signature: The request signature is not valid.",
			"invalid_client_id: keyid must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
			"invalid_path: path must be /agent/ then segments of A-Z a-z 0-9 . _ ~ - joined by single slashes (no percent-encoding)",
			"invalid_signature_input: Content-Digest must be a Structured Field dictionary (RFC 8941)",
			"invalid_signature_input: Content-Digest must hold sha-256",
			"invalid_signature_input: Content-Digest must not name an algorithm twice",
			"invalid_signature_input: Content-Digest sha-256 must be a byte sequence of 32 bytes",
			"invalid_signature_input: Signature must be a Structured Field dictionary (RFC 8941)",
			"invalid_signature_input: Signature must be a byte sequence without parameters",
			"invalid_signature_input: Signature must hold exactly one signature",
			"invalid_signature_input: Signature must use the label of Signature-Input",
			"invalid_signature_input: Signature-Input components must not have parameters",
			"invalid_signature_input: Signature-Input may cover only \"@method\", \"@path\", \"@query\" and \"@authority\" of the derived components",
			"invalid_signature_input: Signature-Input must be a Structured Field dictionary (RFC 8941)",
			"invalid_signature_input: Signature-Input must cover \"@method\"",
			"invalid_signature_input: Signature-Input must cover \"@path\"",
			"invalid_signature_input: Signature-Input must cover \"@query\"",
			"invalid_signature_input: Signature-Input must cover \"content-digest\" on a POST",
			"invalid_signature_input: Signature-Input must cover each component once",
			"invalid_signature_input: Signature-Input must cover only headers the request carries",
			"invalid_signature_input: Signature-Input must hold an inner list of covered components",
			"invalid_signature_input: Signature-Input must hold exactly one signature",
			"invalid_signature_input: Signature-Input must list components as strings",
			"invalid_signature_input: Signature-Input must name covered headers in lowercase",
			"invalid_signature_input: Signature-Input must not name a label twice",
			"invalid_signature_input: Signature-Input parameter <name> is not one of created, keyid, nonce, alg, expires or tag",
			"invalid_signature_input: alg must appear once",
			"invalid_signature_input: alg must be \"hmac-sha256\"",
			"invalid_signature_input: created must appear once",
			"invalid_signature_input: created must be integer seconds since the epoch",
			"invalid_signature_input: expires must appear once",
			"invalid_signature_input: keyid must appear once",
			"invalid_signature_input: keyid must be a string: the client id",
			"invalid_signature_input: nonce must appear once",
			"invalid_signature_input: nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -",
			"invalid_signature_input: tag must appear once",
			"missing_headers: Content-Digest is missing (required on a POST)",
		]);
	});
});

/**
 * The one detail that names something the client sent, an unknown parameter's name, with the
 * name taken out; the name must be one the field holds (a parameter's, never a value).
 */
function withoutParameterName(detail: string, input: string, failures: string[], index: number): string {
	const named = /^Signature-Input parameter "([a-z*][a-z0-9_.*-]{0,31})(\.\.\.)?" is not one of /.exec(detail);
	if (named === null) return detail;
	const [, name, cut] = named;
	if (!new RegExp(`;\\s*${name!.replace(/[.*]/g, "\\$&")}${cut === undefined ? "(=|;|$)" : ""}`).test(input)) failures.push(`#${index}: names "${name}", not a parameter of ${input}`);
	return detail.replace(`"${name}${cut ?? ""}"`, "<name>");
}
