import { gatewayError } from "../errors.ts";
import type { AuthEvents, AuthFailure } from "../events.ts";

/**
 * How a signature middleware fails a request: it counts the failure's `mode`, then gives the
 * `HTTPException` to throw. `fail(code)` answers with the code it counts; `reject(mode, ...)`
 * counts a mode the answer does not show (`unknown_client` answers as `bad_signature`).
 */
export function authFailures(events: Pick<AuthEvents, "outcome">) {
	const reject = (mode: AuthFailure, error: Parameters<typeof gatewayError>) => {
		events.outcome("fail", mode);
		return gatewayError(...error);
	};
	const fail = (code: Exclude<AuthFailure, "unknown_client">) => reject(code, [code]);
	return { reject, fail };
}
