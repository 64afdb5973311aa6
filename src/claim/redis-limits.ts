import { MINUTE_MS, utcDay, type LimitName, type LimitState } from "../limits/policy.ts";
import { budgetCall, isSettleReplies, reportId, reservationWindows, settleResults, tokenState, windowKeys, windowRetryMs } from "./redis-budget.ts";
import { arrive, isScriptReply, type ScriptReply } from "./script-reply.ts";
import type { Ride } from "./ride.ts";
import { SettleRides } from "./settle-rides.ts";
import { limitKeys } from "./keys.ts";
import { LIMITED_CLAIM_SCRIPT, LIMITED_CLAIM_SHA1, refusedValue, SCRIPT_VERDICTS, WRITE_BACK_SCRIPT, WRITE_BACK_SHA1 } from "./script.ts";
import { SETTLE_SCRIPT, SETTLE_SHA1 } from "./settle-script.ts";
import {
	ReplayStoreError,
	type HeldSlot,
	type LimitedClaim,
	type LimitedClaimRequest,
	type LimitedClaimStore,
	type Reservation,
	type SettleResult,
	type SpentClaim,
} from "./store.ts";

/**
 * Which time budget a command gets: a claim's (`REPLAY_TIMEOUT_MS`), or a confirmation's (at
 * least a second: it runs only after a claim ran out of time; docs/design.md, "Replay protection").
 */
export type Patience = "claim" | "confirm";

/** The commands the limits need: the script (by hash, then whole), and `ZREM` to free a slot. */
export interface LimitRedis {
	evalsha(sha1: string, keys: string[], args: (string | number)[], patience?: Patience): Promise<unknown>;
	eval(script: string, keys: string[], args: (string | number)[], patience?: Patience): Promise<unknown>;
	zrem(key: string, member: string): Promise<unknown>;
}

export interface RedisLimitStoreOptions {
	/** `REDIS_REPLAY_PREFIX`: the limits' keys live under it too. */
	prefix: string;
	/** How long a slot stays held if its release never comes (a dead isolate). */
	leaseMs: number;
	/** How long a token reservation waits for the origin's report before it is charged whole. @default leaseMs + 60 s */
	reservationLeaseMs?: number;
	/** How long an answer's settle may wait for a claim of its client to carry it (`rides`). Unset: none waits. */
	rideWaitMs?: number;
	/** @default Date.now */
	now?: () => number;
}

/** At most this many settles ride on one claim. */
const RIDES_PER_CLAIM = 8;

interface Script<Reply> {
	name: string;
	source: string;
	sha1: string;
	valid: (reply: unknown) => reply is Reply;
}
const CLAIM: Script<ScriptReply> = { name: "limits", source: LIMITED_CLAIM_SCRIPT, sha1: LIMITED_CLAIM_SHA1, valid: isScriptReply };
const isWriteBackReply = (reply: unknown): reply is string | null => reply === null || typeof reply === "string";
const WRITE_BACK: Script<string | null> = { name: "write-back", source: WRITE_BACK_SCRIPT, sha1: WRITE_BACK_SHA1, valid: isWriteBackReply };
const SETTLE: Script<number[]> = { name: "settle", source: SETTLE_SCRIPT, sha1: SETTLE_SHA1, valid: isSettleReplies };

/** The day counter outlives its UTC day by this much, so an isolate whose clock lags still finds it. */
const DAY_KEY_SLACK_MS = 3_600_000;
const CONCURRENT_RETRY_MS = 1_000;

/**
 * Claims a replay key and spends a client's quota in Upstash with one command: `EVALSHA` of
 * the limits script, `EVAL` when Redis does not know it (`NOSCRIPT`). Exact across isolates:
 * the script runs atomically in Redis. Until Redis has run the script for this isolate once,
 * the isolate sends `EVAL` (which caches it): a new isolate's first requests, all at once,
 * would otherwise each cost an `EVALSHA` answered `NOSCRIPT` and an `EVAL`.
 */
export class RedisLimitStore implements LimitedClaimStore {
	readonly name = "upstash" as const;

	private readonly redis: LimitRedis;
	private readonly options: RedisLimitStoreOptions;
	private readonly now: () => number;
	/** The scripts Redis ran for this isolate (so it has them cached) since their last `NOSCRIPT`. */
	private readonly scriptsCached = new Set<string>();
	/**
	 * Answers' settles waiting for a budgeted claim of their client to carry them; those none took
	 * in time are sent alone, together. Null without `rideWaitMs`.
	 */
	readonly rides: SettleRides | null;

	constructor(redis: LimitRedis, options: RedisLimitStoreOptions) {
		if (!(options.leaseMs > 0)) throw new Error("RedisLimitStore: leaseMs must be positive");
		this.redis = redis;
		this.options = options;
		this.now = options.now ?? Date.now;
		// The rides' wait is the isolate's own time passing, not the store's clock (which a test may stop).
		this.rides = options.rideWaitMs === undefined ? null : new SettleRides({ waitMs: options.rideWaitMs, sendAlone: (batch) => this.settleAll(batch) });
	}

	/**
	 * With `confirming`, this is the second run of a claim whose first timed out: it gets a
	 * confirmation's budget, and finding the claim's own value (its first run landed) is the
	 * claim, finding its own refusal the refusal.
	 */
	async claim(request: LimitedClaimRequest, confirming = false): Promise<LimitedClaim> {
		const { policy, clientId } = request;
		const now = request.at ?? this.now();
		const { day, endsInMs } = utcDay(now);
		const keys = limitKeys(this.options.prefix, clientId, day);
		// The replay value names this claim uniquely (isolate and counter): it is its entry's id, and its slot's.
		const args: (string | number)[] = [request.value, request.ttlMs, now, policy.rpm ?? 0, policy.rpd ?? 0, policy.concurrent ?? 0, now + endsInMs + DAY_KEY_SLACK_MS, this.options.leaseMs];
		const scriptKeys = [request.key, keys.rpm, keys.rpd, keys.inFlight];
		const budget = request.budget === undefined || policy.budget === undefined ? null : budgetCall(this.options.prefix, request, now, this.reservationLeaseMs);
		let rides: Ride[] = [];
		if (budget !== null) {
			scriptKeys.push(...budget.keys);
			args.push(...budget.args);
			rides = this.rides?.take(clientId, budget.holdsIn, RIDES_PER_CLAIM) ?? [];
			if (rides.length > 0) args.push(rides.length, ...rides.flatMap((ride) => [ride.reservation, ride.tokens, ride.report]));
		}
		let reply: ScriptReply;
		try {
			reply = await this.run(CLAIM, scriptKeys, args, confirming ? "confirm" : "claim");
		} catch (error) {
			// Whether the script ran is not known: each carried settle is sent alone (a second settle changes nothing).
			for (const ride of rides) ride.arrive(null);
			throw error;
		}
		if (rides.length > 0 || Array.isArray(reply[reply.length - 1])) arrive(rides, reply);
		const [verdictNumber, retryAfterMs, rpmLeft, rpmResetMs, rpdLeft, concurrentLeft] = reply;
		const verdict = SCRIPT_VERDICTS[verdictNumber];
		if (verdict === "duplicate") {
			const [found, hold] = [reply[6] as string, reply[7] as number | undefined];
			return confirming ? this.confirmed(request, found, now, budget === null || hold === undefined || hold < 0 ? undefined : { id: budget.id, hold, store: this.name }) : { outcome: "duplicate", found };
		}
		const state: LimitState = {
			rpm: rpmLeft < 0 ? null : { remaining: rpmLeft, resetMs: rpmResetMs },
			rpd: rpdLeft < 0 ? null : { remaining: rpdLeft, resetMs: endsInMs },
			concurrent: concurrentLeft < 0 ? null : { remaining: concurrentLeft },
		};
		const [hold, dayLeft, monthLeft, expiredTokens] = reply.slice(6) as number[];
		const charged = budget === null ? {} : { expiredTokens: expiredTokens! };
		if (budget !== null) Object.assign(state, tokenState(request, now, dayLeft!, monthLeft!));
		if (verdict === "claimed") {
			const slot = policy.concurrent === null ? null : { clientId, id: request.value, store: this.name };
			const reservation = budget === null ? {} : { reservation: { id: budget.id, hold: hold!, store: this.name } };
			return { outcome: "claimed", state, slot, ...reservation, ...charged };
		}
		const limit = verdict as LimitName;
		const retry =
			limit === "rpd" ? endsInMs : limit === "concurrent" ? CONCURRENT_RETRY_MS : limit === "rpm" ? retryAfterMs : windowRetryMs(limit, now);
		return { outcome: "limited", limit, retryAfterMs: retry, state, ...charged };
	}

	/** Settles a reservation from the origin's report, with a script of its own: the first report wins. */
	async settle(reservation: string, tokens: number): Promise<SettleResult> {
		return (await this.settleAll([{ reservation, tokens, report: reportId() }]))[0]!;
	}

	/**
	 * Settles reservations from the origin's reports, of any clients, in one script (the settle's
	 * budget): what each found, in order. An id this gateway never gave is unknown, and not sent.
	 */
	async settleAll(reports: readonly { reservation: string; tokens: number; report: string }[]): Promise<SettleResult[]> {
		const results: SettleResult[] = reports.map(() => ({ status: "unknown" }));
		const keys: string[] = [];
		const args: (string | number)[] = [this.now()];
		const sent: number[] = [];
		reports.forEach(({ reservation, tokens, report }, i) => {
			const windows = reservationWindows(reservation);
			if (windows === null) return;
			const own = windowKeys(this.options.prefix, windows);
			keys.push(...own);
			args.push(reservation, tokens, report, own.length);
			sent.push(i);
		});
		if (sent.length === 0) return results;
		const answers = await this.run(SETTLE, keys, args, "confirm");
		if (answers.length !== sent.length * 3) throw new ReplayStoreError("error", "Upstash answered the settle script for another number of settles");
		settleResults(answers).forEach((result, j) => (results[sent[j]!] = result));
		return results;
	}

	private get reservationLeaseMs(): number {
		return this.options.reservationLeaseMs ?? this.options.leaseMs + 60_000;
	}

	/**
	 * A confirming run found `found` under the key: this claim's own (its first run landed,
	 * with its reservation when it made one), its own refusal, or another's.
	 */
	private confirmed(request: LimitedClaimRequest, found: string, now: number, reservation: Reservation | undefined): LimitedClaim {
		const unknown: LimitState = { rpm: null, rpd: null, concurrent: null };
		if (found === request.value) {
			const slot = request.policy.concurrent === null ? null : { clientId: request.clientId, id: request.value, store: this.name };
			return { outcome: "claimed", state: unknown, slot, ...(reservation === undefined ? {} : { reservation }) };
		}
		for (const limit of ["rpd", "rpm", "concurrent", "daily_tokens", "monthly_tokens"] as const) {
			if (found !== refusedValue(request.value, limit)) continue;
			// What was left is not known any more: the longest wait that limit can ask.
			const retryAfterMs =
				limit === "rpd" ? utcDay(now).endsInMs : limit === "rpm" ? MINUTE_MS : limit === "concurrent" ? CONCURRENT_RETRY_MS : windowRetryMs(limit, now);
			return { outcome: "limited", limit, retryAfterMs, state: unknown };
		}
		return { outcome: "duplicate", found };
	}

	/**
	 * Writes a memory claim back with the quota it spent (one script): its key `SET NX GET`,
	 * its spend added unless its own value is there. Returns the value found, or null.
	 */
	async writeBack(claim: SpentClaim): Promise<string | null> {
		const { spend } = claim;
		const { day, endsInMs } = utcDay(spend.at);
		const keys = limitKeys(this.options.prefix, claim.clientId, day);
		const args = [claim.value, claim.ttlMs, spend.at, spend.rpm ? 1 : 0, spend.rpd ? 1 : 0, spend.at + endsInMs + DAY_KEY_SLACK_MS, this.now()];
		return this.run(WRITE_BACK, [claim.key, keys.rpm, keys.rpd], args, "confirm");
	}

	async release(slot: HeldSlot): Promise<void> {
		const { inFlight } = limitKeys(this.options.prefix, slot.clientId, "");
		await this.call(() => this.redis.zrem(inFlight, slot.id));
	}

	/** One script, by hash once Redis ran it for this isolate, else whole (`EVAL`, which caches it); an unexpected reply is a store failure. */
	private async run<Reply>(script: Script<Reply>, keys: string[], args: (string | number)[], patience: Patience): Promise<Reply> {
		const reply = await this.call(async () => {
			if (!this.scriptsCached.has(script.sha1)) return this.redis.eval(script.source, keys, args, patience);
			try {
				return await this.redis.evalsha(script.sha1, keys, args, patience);
			} catch (error) {
				// Redis names this one error only by its text (`NOSCRIPT ...`): flushed, or a new primary.
				if (!(error instanceof Error && /NOSCRIPT/i.test(error.message))) throw error;
				this.scriptsCached.delete(script.sha1);
				return await this.redis.eval(script.source, keys, args, patience);
			}
		});
		if (!script.valid(reply)) throw new ReplayStoreError("error", `Upstash answered the ${script.name} script with an unexpected result`);
		this.scriptsCached.add(script.sha1);
		return reply;
	}

	private async call<T>(command: () => Promise<T>): Promise<T> {
		try {
			return await command();
		} catch (error) {
			if (error instanceof ReplayStoreError) throw error;
			if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
				throw new ReplayStoreError("timeout", "Upstash did not answer in time", { cause: error });
			}
			throw new ReplayStoreError("error", "Upstash call failed", { cause: error });
		}
	}
}
