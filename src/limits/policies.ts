import { LogThrottle, type Logger } from "../log.ts";
import { readEntry } from "./config.ts";
import type { ClientLimits, LimitPolicy } from "./policy.ts";

/** Where a client's record may carry limits of its own: the keyring (docs/design.md, "Keyring"). */
export interface RecordLimits {
	/** Asked after the client's signature verified against its record: from the keyring's cache. */
	limitsFor(clientId: string): Record<string, unknown> | undefined;
}

const INVALID = Symbol("invalid");

/**
 * Each verified client's policy (docs/design.md, "Per-client limits"): the limits its keyring
 * record carries, which replace its `CLIENT_LIMITS` entry as a whole, else its `CLIENT_LIMITS`
 * entry, else the `"*"` default. A record's limits are read with `CLIENT_LIMITS`'s rules, once
 * per cached record; a record never makes its id a metric label (labels are fixed when the
 * isolate starts); a record whose limits break the rules is logged and its id gets
 * `CLIENT_LIMITS`'s policy.
 */
export class LimitPolicies {
	private readonly configured: ClientLimits | null;
	private readonly records: RecordLimits | null;
	private readonly log: Logger;
	private readonly throttle: LogThrottle;
	private readonly parsed = new WeakMap<object, LimitPolicy | null | typeof INVALID>();

	constructor(configured: ClientLimits | null, records: RecordLimits | null, log: Logger, now: () => number = Date.now) {
		this.configured = configured;
		this.records = records;
		this.log = log;
		this.throttle = new LogThrottle(10_000, now);
	}

	/** The policy of a verified client id, or null when it has no limit at all. */
	policyFor(clientId: string): LimitPolicy | null {
		const configured = this.configured?.policyFor(clientId) ?? null;
		const limits = this.records?.limitsFor(clientId);
		return limits === undefined ? configured : this.fromRecord(limits, configured);
	}

	private fromRecord(limits: Record<string, unknown>, configured: LimitPolicy | null): LimitPolicy | null {
		let policy = this.parsed.get(limits);
		if (policy === undefined) {
			// Production's bounds are CLIENT_LIMITS's concern; a record is refused only for what no environment takes.
			const read = readEntry("record", limits, { problem: () => {}, strict: () => {} });
			if (read === null) policy = INVALID;
			else if (read.rpm === null && read.rpd === null && read.concurrent === null && read.budget === undefined) policy = null;
			else policy = { ...read, label: "" };
			this.parsed.set(limits, policy);
		}
		if (policy !== INVALID) return policy;
		const suppressed = this.throttle.admit("invalid");
		if (suppressed !== null) this.log.warn("a keyring record's limits break the CLIENT_LIMITS rules: CLIENT_LIMITS applies to it", { suppressed });
		return configured;
	}
}
