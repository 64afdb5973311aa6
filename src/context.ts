import type { Env } from "./env.ts";

/** What the HMAC middleware hands to the handler after a request passed. */
export interface SignedRequest {
	clientId: string;
	/** The path that was signed (after the `/api` alias), to forward as is. */
	path: string;
	/** The body bytes that were hashed: the ones to forward. */
	body: Uint8Array<ArrayBuffer>;
}

/** The Hono environment of the gateway's routes: bindings and typed context variables. */
export type GatewayEnv = {
	Bindings: Env;
	Variables: {
		/** The request path after the `/api` alias, set before authentication. */
		path: string;
		/** The query as sent (`?...` or empty), forwarded unchanged. */
		query: string;
		signed: SignedRequest;
	};
};
