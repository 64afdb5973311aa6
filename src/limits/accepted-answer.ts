import { setRateLimitHeaders } from "./headers.ts";
import type { LimitPolicy } from "./policy.ts";
import { releaseWhenAnswerEnds } from "./release.ts";
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
