import { describe, expect, it } from "vitest";
import { confirmedClaim } from "./claim-outcomes.ts";
import type { LimitPolicy } from "./policy.ts";

const POLICY: LimitPolicy = { rpm: 60, rpd: null, concurrent: 2, label: "" };
const request = { value: "svc:1:iso:7", clientId: "svc", policy: POLICY };

describe("confirmedClaim: a timed-out claim run again", () => {
	it("finding this claim's own value, is the claim: the first run landed, its slot held", () => {
		expect(confirmedClaim({ outcome: "duplicate", found: "svc:1:iso:7" }, request)).toEqual({
			outcome: "claimed",
			state: { rpm: null, rpd: null, concurrent: null },
			slot: { clientId: "svc", id: "svc:1:iso:7", store: "upstash" },
		});
	});

	it("finding another claim's value, stays a replay", () => {
		const another = { outcome: "duplicate" as const, found: "svc:1:iso-other:3" };
		expect(confirmedClaim(another, request)).toBe(another);
		const unknown = { outcome: "duplicate" as const };
		expect(confirmedClaim(unknown, request)).toBe(unknown);
	});
});
