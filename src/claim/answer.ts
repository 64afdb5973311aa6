// The answer to an accepted request of a limited client (docs/design.md, "Per-client limits"):
// its RateLimit fields, and a `concurrent` slot held until the answer ends (a streamed answer
// counts until its last byte, or until the client goes away).
import { setRateLimitHeaders } from "../limits/headers.ts";
import type { LimitPolicy } from "../limits/policy.ts";
import type { HeldSlot, LimitGrant } from "./store.ts";

type WaitUntil = Pick<ExecutionContext, "waitUntil">;

/**
 * The answer to an accepted request of a limited client: the RateLimit header fields, so it
 * can slow down before it is refused, and, under a `concurrent` limit, its slot released when
 * the answer's body ends.
 */
export function answerOfLimitedClient(
	response: Response,
	policy: LimitPolicy,
	grant: LimitGrant,
	release: (slot: HeldSlot) => Promise<void>,
	background: WaitUntil | undefined,
): Response {
	let answer = response;
	try {
		setRateLimitHeaders(answer.headers, policy, grant.state);
	} catch {
		// Immutable headers (a response passed through as fetched): a copy takes them.
		answer = new Response(answer.body, answer);
		setRateLimitHeaders(answer.headers, policy, grant.state);
	}
	const { slot } = grant;
	return slot === null ? answer : releaseWhenAnswerEnds(answer, () => release(slot), background);
}


/**
 * Returns `response` with its body piped through a runtime stream, and runs `release` once
 * that body has ended (sent, cut or cancelled), in the background. The pipe is the runtime's
 * own: no JavaScript runs per chunk. A body of known length keeps its `Content-Length`.
 *
 * @example
 * ```ts
 * c.res = releaseWhenAnswerEnds(c.res, () => limits.release(slot), c.executionCtx);
 * ```
 */
export function releaseWhenAnswerEnds(response: Response, release: () => Promise<void>, background: WaitUntil | undefined): Response {
	const body = response.body;
	if (body === null) {
		keep(background, release());
		return response;
	}
	const length = response.headers.get("content-length");
	const known = length !== null && /^[0-9]{1,15}$/.test(length) && !response.headers.has("content-encoding");
	// A standard TransformStream without a transform runs no JavaScript per chunk, and, unlike an
	// IdentityTransformStream, ends the pipe (and cancels the origin) when the client goes away
	// while the origin is silent. A body of known length is passed on whole and keeps its length.
	const { readable, writable } = known ? new FixedLengthStream(Number(length)) : new TransformStream<Uint8Array, Uint8Array>();
	// Ends when the body was sent whole, when it broke, or when the client cancelled: the slot is free either way.
	const ended = body.pipeTo(writable).then(
		() => release(),
		() => release(),
	);
	keep(background, ended);
	return new Response(readable, response);
}

function keep(background: WaitUntil | undefined, work: Promise<unknown>): void {
	const settled = work.catch(() => {});
	background?.waitUntil(settled);
}
