/**
 * Waits until `condition` holds, checking every 50 ms, for at most `timeoutMs` (then fails
 * naming what it waited for). A test that reads a state which changes with time (a breaker's
 * cool-down, a lease, a write-back) waits for it this way, never for a fixed sleep.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}
