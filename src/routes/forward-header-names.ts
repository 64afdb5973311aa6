// Which request headers reach the origin, by name: docs/design.md, "Forwarding". Data only:
// forward.ts applies it to each request, src/config/origin.ts to ORIGIN_FORWARD_HEADERS.

/**
 * End-to-end headers an origin checks itself, forwarded from every verified request: never one
 * an origin would trust because a proxy sent it (README lists them).
 */
export const DEFAULT_FORWARDED: readonly string[] = [
	"accept",
	"accept-encoding",
	"accept-language",
	"authorization",
	"baggage",
	"content-encoding",
	"content-language",
	"content-type",
	"cookie",
	"idempotency-key",
	"traceparent",
	"tracestate",
	"user-agent",
	"x-request-id",
];

/** Each scheme's own signature headers: a request verified by one forwards these, never the other's. */
export const SCHEME_HEADERS = {
	v1: ["x-client-id", "x-timestamp", "x-signature"],
	v2: ["signature", "signature-input", "content-digest"],
} as const satisfies Record<"v1" | "v2", readonly string[]>;

export const HOP_BY_HOP: readonly string[] = [
	"connection",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
];

/**
 * What the gateway alone sets on the way to the origin (its own, and what the runtime sets:
 * `Host`, `Content-Length`, the address it turns into `X-Forwarded-For`): a client's are never
 * sent on, whatever a list or a signature names. `X-Forwarded-*` are the gateway's as a family.
 */
export const GATEWAY_SET: readonly string[] = [
	"x-auth-mode",
	"x-gateway-token",
	"x-test-mode",
	"x-forwarded-for",
	"x-client-id",
	"x-token-hold",
	"x-token-reservation",
	"x-token-usage",
	"cf-connecting-ip",
	"host",
	"content-length",
];
export const GATEWAY_SET_PREFIX = "x-forwarded-";

/**
 * Names some framework or proxy reads as the client's address, the request's host or its method,
 * or as an identity a proxy vouched for: never sent on because a v2 signature covers them (a
 * signature proves what the client sent, not that it is true). An operator may still list one.
 */
export const NEVER_FROM_A_SIGNATURE: readonly string[] = [
	"forwarded",
	"x-real-ip",
	"true-client-ip",
	"x-client-ip",
	"client-ip",
	"x-cluster-client-ip",
	"x-originating-ip",
	"x-remote-addr",
	"fastly-client-ip",
	"x-azure-clientip",
	"x-host",
	"x-original-host",
	"x-original-uri",
	"x-original-url",
	"x-rewrite-url",
	"x-envoy-original-path",
	"x-scheme",
	"x-url-scheme",
	"front-end-https",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
	"x-original-method",
	"remote-user",
	"x-remote-user",
	"x-user",
	"x-authenticated-user",
	"x-auth-request-user",
	"x-auth-request-email",
];
/** Cloudflare's own request headers (`CF-Ray`, `CF-IPCountry`, `Cf-Access-*`...): never from a signature either. */
export const CLOUDFLARE_PREFIX = "cf-";
