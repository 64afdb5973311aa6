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
			if (crypto.subtle.timingSafeEqual(digest, presented)) matched = true;
		}
		return matched;
	}
}
