import { hasProgram } from "../../../scripts/lib/processes.ts";

/** CI sets CI=true: there a test that needs a service fails when it is missing, never skips. */
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

/**
 * Whether `program` can run here. Outside CI a missing program skips its tests (and says
 * so); in CI it throws, so the run fails.
 */
export function available(program: string, debianPackage: string): boolean {
	if (hasProgram(program)) return true;
	const message = `${program} is not installed (Debian package ${debianPackage}); .ci/run installs it`;
	if (IN_CI) throw new Error(message);
	console.warn(`skipping tests that need ${program}: ${message}`);
	return false;
}
