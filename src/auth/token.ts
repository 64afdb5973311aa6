import { utf8 } from "./crypto.ts";

/**
 * Checks `Authorization: Bearer <token>` against a list of accepted tokens in constant
 * time: both sides are hashed with SHA-256, so the comparison never leaks a length,
 * then compared with `crypto.subtle.timingSafeEqual`.
 */
export class BearerTokens {
	/** How many tokens are accepted; 0 means none is configured. */
	readonly count: number;
	private readonly digests: Promise<ArrayBuffer[]>;

	constructor(tokens: readonly string[]) {
		this.count = tokens.length;
		this.digests = Promise.all(tokens.map((token) => crypto.subtle.digest("SHA-256", utf8(token))));
	}

	async matches(authorization: string | null | undefined): Promise<boolean> {
		if (this.count === 0 || !authorization) return false;
		const match = /^Bearer +(\S+)$/i.exec(authorization.trim());
		if (match === null) return false;
		const presented = await crypto.subtle.digest("SHA-256", utf8(match[1]!));
		let matched = false;
		for (const digest of await this.digests) {
			// Every token is compared, so the position of a match does not show in the time.
			if (timingSafeEqual(digest, presented)) matched = true;
		}
		return matched;
	}
}

function timingSafeEqual(a: ArrayBuffer, b: ArrayBuffer): boolean {
	const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBuffer, b: ArrayBuffer) => boolean };
	if (subtle.timingSafeEqual !== undefined) return subtle.timingSafeEqual(a, b);
	// Outside workerd (the Node signer's tests): a plain constant-time loop over equal-length digests.
	const left = new Uint8Array(a);
	const right = new Uint8Array(b);
	let difference = left.length ^ right.length;
	for (let i = 0; i < left.length; i++) difference |= left[i]! ^ right[i]!;
	return difference === 0;
}
