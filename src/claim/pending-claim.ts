import { ownCopy } from "./memory.ts";

/** A claim made in memory during an outage, as its write-back rebuilds its key and value. */
export interface PendingClaim {
	/** The key without the prefix all keys share. */
	replayId: string;
	clientId: string;
	timestamp: string;
	/** Names the claim among this isolate's. */
	counter: number;
	/**
	 * The quota this claim spent in memory (under a limit policy, during an outage): when, and
	 * of which limits. Written back with the claim, since the counters are additive.
	 */
	spend?: Spend;
}

/** Quota a memory claim spent: one unit of `rpm` and/or `rpd` at `at` (epoch ms). */
export interface Spend {
	at: number;
	rpm: boolean;
	rpd: boolean;
}

/**
 * A waiting claim as one flat string: an outage can queue as many as the memory store holds,
 * and one string costs less than an object holding three. `counter:timestampLength:clientLength:spend:`
 * then the timestamp, the client id and the key, so no field needs escaping; `spend` is empty,
 * or which limits (1 rpm, 2 rpd, 3 both) and when in base 36. A v2 key
 * (`v2:<keyid>:<nonce>`) already names its client (the keyid): its client length is left
 * empty and the id is read back from the key, so a 64-character id is not kept twice.
 */
export function packClaim(claim: PendingClaim): string {
	const { replayId, clientId, timestamp, counter, spend } = claim;
	const inKey = keyidOf(replayId) === clientId;
	const clientLength = inKey ? "" : String(clientId.length);
	const spent = spend === undefined ? "" : `${(spend.rpm ? 1 : 0) + (spend.rpd ? 2 : 0)}${spend.at.toString(36)}`;
	// A flat copy: a template joins its parts without copying them, and the key's parts are
	// slices of request headers that must not stay alive with it.
	return ownCopy(`${counter}:${timestamp.length}:${clientLength}:${spent}:${timestamp}${inKey ? "" : clientId}${replayId}`);
}

export function unpackClaim(packed: string): PendingClaim {
	const first = packed.indexOf(":");
	const second = packed.indexOf(":", first + 1);
	const third = packed.indexOf(":", second + 1);
	const fourth = packed.indexOf(":", third + 1);
	const clientLength = packed.slice(second + 1, third);
	const spent = packed.slice(third + 1, fourth);
	const timestampEnd = fourth + 1 + Number(packed.slice(first + 1, second));
	const clientEnd = timestampEnd + (clientLength === "" ? 0 : Number(clientLength));
	const replayId = packed.slice(clientEnd);
	const claim: PendingClaim = {
		replayId,
		clientId: clientLength === "" ? keyidOf(replayId)! : packed.slice(timestampEnd, clientEnd),
		timestamp: packed.slice(fourth + 1, timestampEnd),
		counter: Number(packed.slice(0, first)),
	};
	if (spent !== "") {
		const limits = Number(spent[0]);
		claim.spend = { at: parseInt(spent.slice(1), 36), rpm: (limits & 1) !== 0, rpd: (limits & 2) !== 0 };
	}
	return claim;
}

/** The keyid of a v2 key, `v2:<keyid>:<nonce>`, up to the first `:` (the keyid grammar has none); otherwise undefined. */
function keyidOf(replayId: string): string | undefined {
	if (!replayId.startsWith("v2:")) return undefined;
	const end = replayId.indexOf(":", 3);
	return end === -1 ? undefined : replayId.slice(3, end);
}
