// Where the limits script keeps a client's limits and token budget in Redis (docs/design.md,
// "Per-client limits", "Token budgets").

/**
 * The Redis keys of one client's limits, under the replay prefix (so one ACL pattern covers
 * them; a replay key's suffix is a hex signature or `v2:...`, never `limit:`).
 */
export function limitKeys(prefix: string, clientId: string, day: string): { rpm: string; rpd: string; inFlight: string } {
	return {
		rpm: `${prefix}limit:rpm:${clientId}`,
		rpd: `${prefix}limit:rpd:${clientId}:${day}`,
		inFlight: `${prefix}limit:inflight:${clientId}`,
	};
}

/**
 * The Redis keys of one client's token budget: a window per UTC day and per UTC month
 * (`...:tokens:day:2026-12-07`, `...:tokens:month:2026-12`), its reservations by lease end and their holds.
 */
export function budgetKeys(prefix: string, clientId: string): { day(name: string): string; month(name: string): string; leases: string; holds: string } {
	const base = `${prefix}limit:${clientId}:tokens:`;
	return {
		day: (name) => `${base}day:${name}`,
		month: (name) => `${base}month:${name}`,
		leases: `${base}leases`,
		holds: `${base}holds`,
	};
}
