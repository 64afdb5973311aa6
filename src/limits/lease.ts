/**
 * How long a `concurrent` slot is held when its release never comes (an isolate that died):
 * the wait for the origin's response headers (`ORIGIN_TIMEOUT_MS`) plus the longest answer the
 * gateway lets run (`ORIGIN_STREAM_MAX_MS`), so a live answer never outlasts its slot
 * (docs/design.md, "Per-client limits").
 */
export function slotLeaseMs(origin: { timeoutMs: number; streamMaxMs: number }): number {
	return origin.timeoutMs + origin.streamMaxMs;
}
