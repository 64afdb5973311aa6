/** The part of a Worker's ExecutionContext that runs work after the answer. */
export type Background = Pick<ExecutionContext, "waitUntil">;

/**
 * The request's ExecutionContext, or undefined when there is none (`app.request()` or
 * `app.fetch()` without one, as in a test): Hono's `c.executionCtx` throws then, and work
 * that would run in the background is skipped.
 *
 * @example
 * ```ts
 * backgroundOf(c)?.waitUntil(pipeline.flush());
 * ```
 */
export function backgroundOf(c: { executionCtx: Background }): Background | undefined {
	try {
		return c.executionCtx;
	} catch {
		return undefined;
	}
}
