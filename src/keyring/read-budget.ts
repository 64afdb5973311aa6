/**
 * KV reads per second that may serve no client (docs/design.md, "Keyring": a flood of random
 * ids): a read of an id the isolate knows nothing of, one that found no usable record, one that
 * failed, and a re-read after a failed signature each spend one. Past the budget, the rest of
 * the second reads nothing of that kind.
 */
export class ReadBudget {
	private readonly perSecond: number;
	private readonly now: () => number;
	private window = 0;
	private spent = 0;

	constructor(perSecond: number, now: () => number) {
		if (!(perSecond > 0)) throw new Error("ReadBudget: perSecond must be positive");
		this.perSecond = perSecond;
		this.now = now;
	}

	/** Whether a read may be made now (spending nothing). */
	admits(): boolean {
		const window = Math.floor(this.now() / 1000);
		if (window !== this.window) {
			this.window = window;
			this.spent = 0;
		}
		return this.spent < this.perSecond;
	}

	/** Counts one read against this second's budget (none beyond it). */
	spend(): void {
		if (this.admits()) this.spent++;
	}
}
