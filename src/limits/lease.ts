/**
 * How long a `concurrent` slot is held when its release never comes (an isolate that died):
 * the wait for the origin's headers plus the longest answer the gateway lets run. Where the
 * configuration bounds a streamed answer (`ORIGIN_STREAM_MAX_MS`), that bound; else 10
 * minutes, the longest answer an operator is expected to allow (docs/design.md, "Per-client limits").
 */
export const LONGEST_ANSWER_DEFAULT_MS = 600_000;

export function slotLeaseMs(origin: { timeoutMs: number; streamMaxMs?: number }): number {
	return origin.timeoutMs + (origin.streamMaxMs ?? LONGEST_ANSWER_DEFAULT_MS);
}
