/** Two primes under 2^26: a remainder times a base stays under 2^52, exact in a double. */
const PRIMES = [67_108_859, 67_108_837] as const;
const SPACE = 2 ** 26;

/**
 * Numbers for client ids, for the memory store's per-client count: a number, not the id, so an
 * outage whose claims each name another 64-character id keeps no id at all. Two polynomial
 * hashes, each over a prime near 2^26 at a secret random point, make one 52-bit number: for
 * any two ids of up to 64 characters, chosen by anyone who does not know the points, the
 * chance that they share a number is under (64 / 2^26)^2 = 2^-40 (a nonzero polynomial of
 * degree 64 has at most 64 roots), so no one can pick an id that takes from another's half.
 * Computed at once, without awaiting: the memory store checks and writes a claim in one step.
 */
export class OwnerNumbers {
	private readonly points: readonly [number, number];

	/** @param random the points' source; tests pass fixed ones. */
	constructor(random: () => [number, number] = randomPoints) {
		const [first, second] = random();
		this.points = [first % PRIMES[0], second % PRIMES[1]];
	}

	/** `id`'s number: an integer under 2^52, the same for the same id in this instance. */
	of(id: string): number {
		return polynomial(id, this.points[0], PRIMES[0]) * SPACE + polynomial(id, this.points[1], PRIMES[1]);
	}
}

/** Each code unit plus one, so no coefficient is zero and ids of different lengths differ. */
function polynomial(id: string, point: number, prime: number): number {
	let value = 0;
	for (let i = 0; i < id.length; i++) value = (value * point + id.charCodeAt(i) + 1) % prime;
	return value;
}

function randomPoints(): [number, number] {
	const [first, second] = crypto.getRandomValues(new Uint32Array(2));
	return [first!, second!];
}
