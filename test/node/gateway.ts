import { inject } from "vitest";
import { startGateway as start, type RunningGateway } from "../../scripts/lib/gateway-runner.ts";

export { CLIENT_ID, SECRET, signed, type RunningGateway } from "../../scripts/lib/gateway-runner.ts";

/** The shipped bundle (built once by the global setup) in workerd through Miniflare's API. */
export function startGateway(bindings: Record<string, string>, options: { isolates?: number; persistTo?: string } = {}): Promise<RunningGateway> {
	return start(bindings, { ...options, scriptPath: inject("bundlePath") });
}
