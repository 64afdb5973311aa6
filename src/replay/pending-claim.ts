import { ownCopy } from "./memory.ts";

/** A claim made in memory during an outage, as its write-back rebuilds its key and value. */
export interface PendingClaim {
	/** The key without the prefix all keys share. */
	replayId: string;
	clientId: string;
	timestamp: string;
	/** Names the claim among this isolate's. */
	counter: number;
}

/**
 * A waiting claim as one flat string: an outage can queue as many as the memory store holds,
 * and one string costs less than an object holding three. `counter:timestampLength:clientLength:`
 * then the timestamp, the client id and the key, so no field needs escaping. A v2 key
 * (`v2:<keyid>:<nonce>`) already names its client (the keyid): its client length is left
 * empty and the id is read back from the key, so a 64-character id is not kept twice.
 */
export function packClaim(claim: PendingClaim): string {
	const { replayId, clientId, timestamp, counter } = claim;
	const inKey = keyidOf(replayId) === clientId;
	const clientLength = inKey ? "" : String(clientId.length);
	// A flat copy: a template joins its parts without copying them, and the key's parts are
	// slices of request headers that must not stay alive with it.
	return ownCopy(`${counter}:${timestamp.length}:${clientLength}:${timestamp}${inKey ? "" : clientId}${replayId}`);
}

export function unpackClaim(packed: string): PendingClaim {
	const first = packed.indexOf(":");
	const second = packed.indexOf(":", first + 1);
	const third = packed.indexOf(":", second + 1);
	const clientLength = packed.slice(second + 1, third);
	const timestampEnd = third + 1 + Number(packed.slice(first + 1, second));
	const clientEnd = timestampEnd + (clientLength === "" ? 0 : Number(clientLength));
	const replayId = packed.slice(clientEnd);
	return {
		replayId,
		clientId: clientLength === "" ? keyidOf(replayId)! : packed.slice(timestampEnd, clientEnd),
		timestamp: packed.slice(third + 1, timestampEnd),
		counter: Number(packed.slice(0, first)),
	};
}

/** The keyid of a v2 key, `v2:<keyid>:<nonce>`, up to the first `:` (the keyid grammar has none); otherwise undefined. */
function keyidOf(replayId: string): string | undefined {
	if (!replayId.startsWith("v2:")) return undefined;
	const end = replayId.indexOf(":", 3);
	return end === -1 ? undefined : replayId.slice(3, end);
}
