// How a streamed answer reaches the client, and how it is cut: docs/design.md, "Forwarding".

/** Why a streamed answer ended before the origin ended it. */
export type StreamCutReason = "idle" | "deadline";

/** What bounds one streamed answer; each costs only where it is set. */
export interface StreamBounds {
	/** The longest gap between chunks (`ORIGIN_IDLE_MS`); null: none, and no JavaScript per chunk. */
	idleMs: number | null;
	/** The origin fetch's total deadline, when this call has one (`ORIGIN_STREAM_MAX_MS`, or a watched answer). */
	deadline: AbortSignal | null;
	/** Counts a cut. */
	onCut: (reason: StreamCutReason) => void;
}

/**
 * The client's body for an origin's streamed one: with the idle cut, through JavaScript per
 * chunk; with a deadline only, piped natively so that the deadline can end it and its end is
 * seen; with neither, the origin's body itself, handed to the runtime (no JavaScript per chunk,
 * no timer: the answer lasts while the origin sends and the client stays).
 */
export function streamedBody(body: ReadableStream<Uint8Array>, bounds: StreamBounds): ReadableStream<Uint8Array> {
	if (bounds.idleMs !== null) return cutWhenIdle(body, bounds.idleMs, bounds.deadline, bounds.onCut);
	if (bounds.deadline !== null) return passNatively(body, bounds.deadline, bounds.onCut);
	return body;
}

/**
 * Hands the origin's body to the runtime: a native pipe into an `IdentityTransformStream`, no
 * JavaScript per chunk. The origin fetch's signal carries the total deadline, which the runtime
 * enforces on the body too. Not the origin's body itself: workerd then proxies it after the
 * handler returns, and the deadline's timer never fires (the stream runs on past it). The pipe
 * also says how the answer ended: when the origin's side ends it early (the deadline, or the
 * origin broke), the client's answer is closed cleanly and `onCut` says why; when the client
 * leaves, the pipe cancels the origin's body (the runtime closes that connection), no cut.
 */
export function passNatively(body: ReadableStream<Uint8Array>, deadline: AbortSignal, onCut: (reason: StreamCutReason) => void): ReadableStream<Uint8Array> {
	const { readable, writable } = new IdentityTransformStream();
	body.pipeTo(writable, { preventAbort: true }).catch(() => {
		// Counted at once: the client may see the end before a close settles.
		if (deadline.aborted) onCut("deadline");
		writable.close().then(
			() => {
				if (!deadline.aborted) onCut("idle");
			},
			// The client's side is gone: it left, which is no cut.
			() => {},
		);
	});
	return readable;
}

/**
 * Passes chunks through as they arrive; when the origin sends none for `idleMs` while the
 * client waits for one, or its stream breaks (the deadline included), cancels the origin and
 * ends the answer. The watchdog is one timer for the whole answer, re-armed from the time the
 * pending read began: a chunk costs no timer, no race and no extra promise, but it does cost
 * the stream machinery of a JavaScript stream (see the README for the figure).
 */
export function cutWhenIdle(body: ReadableStream<Uint8Array>, idleMs: number, deadline: AbortSignal | null, onCut: (reason: StreamCutReason) => void): ReadableStream<Uint8Array> {
	const reader = body.getReader();
	/** When the read now pending began; null while none is (the client has not asked for more). */
	let waitingSince: number | null = null;
	let timer: ReturnType<typeof setTimeout> | undefined;
	let ended = false;
	const end = () => {
		ended = true;
		if (timer !== undefined) clearTimeout(timer);
	};
	return new ReadableStream<Uint8Array>({
		start(controller) {
			const watch = () => {
				if (ended) return;
				const quiet = waitingSince === null ? 0 : Date.now() - waitingSince;
				if (quiet < idleMs) {
					timer = setTimeout(watch, idleMs - quiet);
					return;
				}
				end();
				onCut("idle");
				// Ends the pending read too (done), which the pull below then ignores.
				reader.cancel("origin idle").catch(() => {});
				controller.close();
			};
			timer = setTimeout(watch, idleMs);
		},
		async pull(controller) {
			waitingSince = Date.now();
			try {
				const next = await reader.read();
				waitingSince = null;
				if (ended) return;
				if (next.done) {
					end();
					controller.close();
				} else {
					controller.enqueue(next.value);
				}
			} catch {
				if (ended) return;
				end();
				onCut(deadline?.aborted ? "deadline" : "idle");
				controller.close();
			}
		},
		cancel(reason) {
			end();
			return reader.cancel(reason);
		},
	});
}
