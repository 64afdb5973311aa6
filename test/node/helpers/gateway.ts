import { inject } from "vitest";
import { startGateway as start, type RunningGateway } from "../../../scripts/lib/gateway-runner.ts";
import { signedInit, type SignedInit } from "../../fixtures/signed.ts";

export type { RunningGateway } from "../../../scripts/lib/gateway-runner.ts";

export const SECRET = "node-test-secret-of-32-characters";
export const CLIENT_ID = "svc-node";

/**
 * The shipped bundle (built once by the global setup) in workerd through Miniflare's API,
 * with `HMAC_SECRET=SECRET` and `ENVIRONMENT=test` unless `bindings` say otherwise.
 */
export function startGateway(bindings: Record<string, string>, options: { isolates?: number; persistTo?: string } = {}): Promise<RunningGateway> {
	return start({ HMAC_SECRET: SECRET, ...bindings }, { ...options, scriptPath: inject("bundlePath") });
}

/** A request signed now with the tests' secret: its path and `RequestInit`. */
export function signed(init: SignedInit = {}) {
	return signedInit(init, { clientId: CLIENT_ID, secret: SECRET, timestamp: Date.now() });
}
