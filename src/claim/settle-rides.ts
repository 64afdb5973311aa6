import type { Background } from "../background.ts";
import type { Ride, RideOutcome, RideRequest } from "./ride.ts";
import type { SettleResult } from "./store.ts";

export interface SettleRidesOptions {
	/** How long a settle waits for a claim to carry it before it is sent alone. */
	waitMs: number;
	/**
	 * Sends settles alone, together in one command (of any clients): what each found, in order.
	 * Rejects when the store cannot tell.
	 */
	sendAlone(batch: readonly RideRequest[]): Promise<SettleResult[]>;
	/** At most this many wait in the isolate; past it `offer` refuses (the caller sends the settle alone). @default 1024 */
	maxWaiting?: number;
	/**
	 * How long one sweeper takes on new settles (its request's `waitUntil` has a time limit), and
	 * how many commands it sends (its request's subrequests: 50 on the free plan). It then retires:
	 * the next settle starts another, and it ends once those it took on are settled. @default 10000, 16
	 */
	sweeperMs?: number;
	sweeperCommands?: number;
	/** @default Date.now */
	now?: () => number;
}

/** At most this many settles go in one command sent alone. */
const SENT_TOGETHER = 64;

/** One sweeper: when it started, how many settles it took on that are not settled yet, the commands it sent, and how to end its sleep. */
interface Sweeper {
	startedAt: number;
	owed: number;
	sent: number;
	wake: (() => void) | null;
}

interface Entry {
	request: RideRequest;
	/** When it started waiting (a settle handed back by a failed claim is due at once). */
	since: number;
	/** Waiting in its client's list; carried by a claim; being sent alone; settled. */
	state: "waiting" | "carried" | "sending" | "done";
	sweeper: Sweeper;
}

/**
 * Settles that ride on the next claim (docs/design.md, "Token budgets"): an
 * answer's settle is handed over and waits, up to `waitMs`, for this isolate's next budgeted
 * claim of the same client, which carries it in its own script. The request that reported it
 * keeps no timer, promise or `waitUntil` for it (that cost a reported answer more CPU than its
 * whole reservation; BENCHMARKS.md). One sweeper at a time, a timer in the `waitUntil` of the
 * request that started it, sends alone what no claim took in time, all then due in one command.
 *
 * @example
 * const rides = new SettleRides({ waitMs: 250, sendAlone: (batch) => store.settleAll(batch) });
 * // In the answer that reported usage (false when full: then send it alone now):
 * rides.offer({ clientId: "svc", reservation, tokens: 120, day, month, settled: count }, c.executionCtx);
 * // In a budgeted claim of svc: carry them, then hand each what the script found.
 * const taken = rides.take("svc", holdsIn, 8);
 */
export class SettleRides {
	private readonly lists = new Map<string, Entry[]>();
	/** Every waiting settle in the order it came (some taken since, dropped as the sweeper meets them). */
	private queue: Entry[] = [];
	private readonly waitMs: number;
	private readonly send: SettleRidesOptions["sendAlone"];
	private readonly maxWaiting: number;
	private readonly sweeperMs: number;
	private readonly sweeperCommands: number;
	private readonly now: () => number;
	private size = 0;
	/** The sweeper that takes on new settles; null: none (the next offer starts one). */
	private active: Sweeper | null = null;

	constructor(options: SettleRidesOptions) {
		if (!(options.waitMs > 0)) throw new Error("SettleRides: waitMs must be positive");
		this.waitMs = options.waitMs;
		this.send = options.sendAlone;
		this.maxWaiting = options.maxWaiting ?? 1024;
		if (!(this.maxWaiting > 0)) throw new Error("SettleRides: maxWaiting must be positive");
		this.sweeperMs = options.sweeperMs ?? 10_000;
		if (!(this.sweeperMs > 0)) throw new Error("SettleRides: sweeperMs must be positive");
		this.sweeperCommands = options.sweeperCommands ?? 16;
		if (!(Number.isInteger(this.sweeperCommands) && this.sweeperCommands > 0)) throw new Error("SettleRides: sweeperCommands must be a positive integer");
		this.now = options.now ?? Date.now;
	}

	/** Settles waiting now, in the whole isolate. */
	get waitingCount(): number {
		return this.size;
	}

	/**
	 * Hands a settle over to wait for a claim of its client: true when it waits (what it found
	 * goes to `settled`, or it is sent alone later), false when the isolate is full (the caller
	 * sends it alone now). Starts a sweeper in `background` when none takes settles on.
	 */
	offer(request: RideRequest, background: Background): boolean {
		if (this.size >= this.maxWaiting) return false;
		const now = this.now();
		const current = this.active;
		const retired = current === null || now - current.startedAt >= this.sweeperMs || current.sent >= this.sweeperCommands;
		const sweeper: Sweeper = retired ? { startedAt: now, owed: 0, sent: 0, wake: null } : current;
		sweeper.owed++;
		this.enqueue({ request, since: now, state: "waiting", sweeper });
		if (sweeper !== current) {
			this.active = sweeper;
			background.waitUntil(this.sweep(sweeper));
		}
		return true;
	}

	/**
	 * Takes up to `max` of `clientId`'s waiting settles whose windows `holdsIn` accepts (those a
	 * claim at this instant has among its keys), oldest first. Each must then `arrive`.
	 */
	take(clientId: string, holdsIn: (day: string, month: string) => boolean, max: number): Ride[] {
		const list = this.lists.get(clientId);
		if (list === undefined) return [];
		const taken: Ride[] = [];
		const kept: Entry[] = [];
		for (const entry of list) {
			if (taken.length < max && holdsIn(entry.request.day, entry.request.month)) taken.push(this.carry(entry));
			else kept.push(entry);
		}
		if (kept.length === 0) this.lists.delete(clientId);
		else this.lists.set(clientId, kept);
		this.size -= taken.length;
		return taken;
	}

	private carry(entry: Entry): Ride {
		entry.state = "carried";
		const { request } = entry;
		return {
			reservation: request.reservation,
			tokens: request.tokens,
			report: request.report,
			day: request.day,
			month: request.month,
			arrive: (result) => {
				if (entry.state !== "carried") return;
				if (result !== null) {
					request.settled(result);
					this.done(entry);
					return;
				}
				// Whether the failed claim's script ran is not known: due at once, ahead of any settle not yet due.
				entry.state = "waiting";
				entry.since = this.now() - this.waitMs;
				this.insert(entry);
				entry.sweeper.wake?.();
			},
		};
	}

	private enqueue(entry: Entry): void {
		const list = this.lists.get(entry.request.clientId);
		if (list === undefined) this.lists.set(entry.request.clientId, [entry]);
		else list.push(entry);
		this.queue.push(entry);
		this.size++;
	}

	/** Back among the waiting, in the order of `since` (the lists and the queue are in the order settles came). */
	private insert(entry: Entry): void {
		const list = this.lists.get(entry.request.clientId);
		if (list === undefined) this.lists.set(entry.request.clientId, [entry]);
		else insertBySince(list, entry);
		insertBySince(this.queue, entry);
		this.size++;
	}

	private done(entry: Entry): void {
		entry.state = "done";
		const { sweeper } = entry;
		if (--sweeper.owed === 0) sweeper.wake?.();
	}

	/**
	 * Sends alone what waited `waitMs` untaken, until every settle this sweeper took on is
	 * settled: while it takes settles on, any that is due (one whose sweeper died too); once
	 * retired, only its own, so the commands of its request stay few.
	 */
	private async sweep(sweeper: Sweeper): Promise<void> {
		const sends = (entry: Entry) => entry.state === "waiting" && (this.active === sweeper || entry.sweeper === sweeper);
		try {
			while (sweeper.owed > 0) {
				while (this.queue.length > 0 && this.queue[0]!.state !== "waiting") this.queue.shift();
				const now = this.now();
				const due = (this.queue.find(sends)?.since ?? now) + this.waitMs;
				if (due > now) {
					// A timer is never cleared: in workerd a clearTimeout costs more than letting it fire.
					await new Promise<void>((resolve) => {
						sweeper.wake = resolve;
						setTimeout(resolve, due - now);
					});
					sweeper.wake = null;
					continue;
				}
				// With it go those due within a quarter of the wait: a sweeper sends about four commands a second at most.
				const alone: Entry[] = [];
				for (const entry of this.queue) {
					if (!sends(entry)) continue;
					if (entry.since + this.waitMs > now + this.waitMs / 4) break;
					this.remove(entry);
					alone.push(entry);
				}
				const batches: Entry[][] = [];
				for (let i = 0; i < alone.length; i += SENT_TOGETHER) batches.push(alone.slice(i, i + SENT_TOGETHER));
				sweeper.sent += batches.length;
				await Promise.all(batches.map((batch) => this.sendTogether(batch)));
			}
		} finally {
			if (this.active === sweeper) this.active = null;
		}
	}

	/** Sends a batch alone, in one command, and tells each what it found. */
	private async sendTogether(batch: Entry[]): Promise<void> {
		let outcomes: RideOutcome[];
		try {
			outcomes = await this.send(batch.map((entry) => entry.request));
		} catch (error) {
			outcomes = batch.map(() => ({ status: "unavailable", error }));
		}
		batch.forEach((entry, i) => {
			entry.request.settled(outcomes[i] ?? { status: "unavailable", error: new Error("no answer for this settle") });
			this.done(entry);
		});
	}

	private remove(entry: Entry): void {
		entry.state = "sending";
		const list = this.lists.get(entry.request.clientId)!;
		list.splice(list.indexOf(entry), 1);
		if (list.length === 0) this.lists.delete(entry.request.clientId);
		this.size--;
	}
}

/** Inserts `entry` after every entry that started waiting at or before it. */
function insertBySince(entries: Entry[], entry: Entry): void {
	const at = entries.findIndex((other) => other.since > entry.since);
	entries.splice(at === -1 ? entries.length : at, 0, entry);
}
