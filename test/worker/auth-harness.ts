import { expect } from "vitest";
import { signedV2Init, type SignedV2Init } from "../fixtures/signed.ts";
import { CLIENT_ID, errorBody, type Harness, sampleValue, scrape, SECRET } from "./harness.ts";

/** The harness's clock, and `created` at it. */
export const NOW = 1_763_000_000_000;
export const NONCE = "worker-v2-nonce-000001";

/** A v2 request signed at the harness's clock with its secret; `url` is where it goes when that differs. */
export async function v2Request(init: SignedV2Init & { url?: string } = {}): Promise<Request> {
	const { url, ...signing } = init;
	const { target, init: requestInit } = await signedV2Init(signing, { clientId: CLIENT_ID, secret: SECRET, created: NOW / 1000, nonce: NONCE });
	return new Request(url ?? `https://gateway.test${target}`, requestInit);
}

/** A copy of `request` with its headers changed, and with another body when one is given. */
export function withHeaders(request: Request, change: (headers: Headers) => void, body?: string): Request {
	const headers = new Headers(request.headers);
	change(headers);
	return new Request(request.url, { method: request.method, headers, body: body ?? request.body });
}

/**
 * Sends `request` and expects the refusal: status, code, the exact detail when given, no
 * origin call, no Upstash call, and one count under the metrics `mode` (`code` unless told).
 */
export async function expectRejected(
	h: Harness,
	request: Request,
	status: number,
	code: string,
	expected: { detail?: string; mode?: string } = {},
): Promise<Response> {
	const response = await h.fetch(request);
	expect(response.status).toBe(status);
	const body = await errorBody(response.clone());
	expect(body.code).toBe(code);
	if (expected.detail !== undefined) expect(body.detail).toBe(expected.detail);
	expect(h.origin.requests).toHaveLength(0);
	expect(h.redis.calls).toHaveLength(0);
	expect(sampleValue(await scrape(h), "agent_chat_requests_total", { auth: "fail", mode: expected.mode ?? code })).toBe(1);
	return response;
}
