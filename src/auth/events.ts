/** The `auth` label of `agent_chat_requests_total`. */
export type AuthResult = "ok" | "fail" | "bypass";

/** What authentication reports as it decides; the metrics implement it. */
export interface AuthEvents {
	/** One per request that reached a decision: `mode` is `real`, a test mode, or a failure code. */
	outcome(auth: AuthResult, mode: string): void;
	/** Absolute clock skew of a request whose signature verified. */
	skew(milliseconds: number): void;
	/** Which secret of a rotation list verified (0 is the newest). */
	secretSlot(slot: number): void;
	replayAttempt(): void;
}
