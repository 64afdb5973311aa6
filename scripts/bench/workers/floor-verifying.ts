// The benchmark's verifying floor: the least any v1 verifier must do, in the fewest lines, with
// WebCrypto as the contract asks. The body read whole, its SHA-256, the HMAC of the canonical
// string checked (`crypto.subtle.verify`, the key imported once), the clock window, the replay
// key kept in a Map; then the buffering floor's fetch. No framework, no metrics, no error
// catalogue, no header list: shares no code with the gateway.
let key: Promise<CryptoKey> | undefined;
const seen = new Map<string, number>();
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const hex = (bytes: ArrayBuffer) => {
	let out = "";
	for (const b of new Uint8Array(bytes)) out += HEX[b];
	return out;
};

export default {
	async fetch(request, env) {
		const { pathname, search } = new URL(request.url);
		const timestamp = request.headers.get("x-timestamp") ?? "";
		const signature = request.headers.get("x-signature") ?? "";
		const body = request.method === "GET" ? new ArrayBuffer(0) : await request.arrayBuffer();
		if (!/^[0-9a-f]{64}$/.test(signature) || Math.abs(Date.now() - Number(timestamp)) > 300_000) return new Response("refused", { status: 403 });
		key ??= crypto.subtle.importKey("raw", new TextEncoder().encode(env.HMAC_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
		const bodyHash = body.byteLength === 0 ? EMPTY_SHA256 : hex(await crypto.subtle.digest("SHA-256", body));
		const canonical = `${request.method}\n${pathname}\n${timestamp}\n${bodyHash}`;
		const mac = new Uint8Array(32);
		for (let i = 0; i < 32; i++) mac[i] = parseInt(signature.slice(2 * i, 2 * i + 2), 16);
		if (!(await crypto.subtle.verify("HMAC", await key, mac, new TextEncoder().encode(canonical)))) return new Response("refused", { status: 403 });
		if (seen.has(signature)) return new Response("replay", { status: 409 });
		seen.set(signature, Date.now());
		if (seen.size > 100_000) seen.clear();
		return fetch(env.ORIGIN_URL + pathname + search, { method: request.method, headers: request.headers, body: request.method === "GET" ? null : body });
	},
} satisfies ExportedHandler<{ ORIGIN_URL: string; HMAC_SECRET: string }>;
