import { describe, expect, it } from "vitest";
import type { Env } from "../env.ts";
import { readAuth } from "./auth.ts";
import { readOrigin } from "./origin.ts";
import { SettingReader } from "./reader.ts";
import { readReplay } from "./replay.ts";

const ORIGIN = "https://origin.example.com";

describe("the defaults of unset settings (docs/design.md, \"Configuration\")", () => {
	it("signing: a 300 s window and 1 MiB of body", () => {
		const auth = readAuth(new SettingReader({ ORIGIN_URL: ORIGIN }));
		expect({ maxSkewMs: auth.maxSkewMs, maxBodyBytes: auth.maxBodyBytes }).toEqual({ maxSkewMs: 300_000, maxBodyBytes: 1_048_576 });
	});

	it("replay: memory fallback, 200 ms per claim, 300 s keys, a breaker of 3 failures and 5 s", () => {
		const replay = readReplay(new SettingReader({}));
		expect(replay).toEqual({
			upstash: null,
			upstashDisabled: false,
			prefix: "hmac:replay:",
			ttlSeconds: 300,
			timeoutMs: 200,
			failMode: "memory",
			budgetFailMode: "closed",
			breakerFailures: 3,
			breakerCooldownMs: 5_000,
			memoryMaxKeys: 100_000,
		});
	});

	it("REPLAY_TIMEOUT_MS: 1 to 30000", () => {
		expect(readReplay(new SettingReader({ REPLAY_TIMEOUT_MS: "30000" })).timeoutMs).toBe(30_000);
		for (const value of ["0", "30001"]) {
			const read = new SettingReader({ REPLAY_TIMEOUT_MS: value });
			expect(readReplay(read).timeoutMs, value).toBe(200);
			expect(read.problems, value).toEqual(["REPLAY_TIMEOUT_MS must be between 1 and 30000"]);
		}
	});

	it("BUDGET_FAIL_MODE: closed unless memory is asked for, whatever REPLAY_FAIL_MODE says; any other word is a problem", () => {
		expect(readReplay(new SettingReader({ REPLAY_FAIL_MODE: "memory" })).budgetFailMode).toBe("closed");
		expect(readReplay(new SettingReader({ BUDGET_FAIL_MODE: "memory", REPLAY_FAIL_MODE: "closed" })).budgetFailMode).toBe("memory");
		for (const value of ["open", "Memory", "isolate"]) {
			const read = new SettingReader({ BUDGET_FAIL_MODE: value });
			expect(readReplay(read).budgetFailMode, value).toBe("closed");
			expect(read.problems, value).toEqual(["BUDGET_FAIL_MODE must be closed or memory"]);
		}
	});

	it("origin: 60 s for the headers; no deadline on a call, no idle cut, nothing forwarded beside the default list (a watched answer's deadline 15 min)", () => {
		expect(readOrigin(new SettingReader({ ORIGIN_URL: ORIGIN }))).toEqual({
			url: ORIGIN,
			token: null,
			timeoutMs: 60_000,
			streamMaxMs: 900_000,
			deadlineOnEveryCall: false,
			idleMs: null,
			forwardHeaders: [],
		});
	});

	it("ORIGIN_STREAM_MAX_MS set puts the deadline on every call; ORIGIN_IDLE_MS set turns the idle cut on", () => {
		const origin = readOrigin(new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_STREAM_MAX_MS: "900000", ORIGIN_IDLE_MS: "250" }));
		expect([origin.streamMaxMs, origin.deadlineOnEveryCall, origin.idleMs]).toEqual([900_000, true, 250]);
		// Each on its own: the idle cut does not put the deadline on every call, nor the deadline the idle cut.
		const idleOnly = readOrigin(new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_IDLE_MS: "250" }));
		expect([idleOnly.deadlineOnEveryCall, idleOnly.idleMs]).toEqual([false, 250]);
		const deadlineOnly = readOrigin(new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_STREAM_MAX_MS: "60000" }));
		expect([deadlineOnly.streamMaxMs, deadlineOnly.deadlineOnEveryCall, deadlineOnly.idleMs]).toEqual([60_000, true, null]);
	});

	it("ORIGIN_IDLE_MS=disabled is still accepted as unset; any other word is a problem, never off", () => {
		expect(readOrigin(new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_IDLE_MS: "disabled" })).idleMs).toBeNull();
		for (const value of ["Disabled", "off", "0"]) {
			const read = new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_IDLE_MS: value });
			readOrigin(read);
			expect(read.problems, value).toHaveLength(1);
		}
	});

	it("ORIGIN_FORWARD_HEADERS: lowercase names, each once, empty entries skipped", () => {
		const read = new SettingReader({ ORIGIN_URL: ORIGIN, ORIGIN_FORWARD_HEADERS: "X-Tenant, ,x-tenant,Baggage-Extra" });
		expect(readOrigin(read).forwardHeaders).toEqual(["x-tenant", "baggage-extra"]);
		expect(read.problems).toEqual([]);
	});
});

describe("ORIGIN_URL", () => {
	it("loses every trailing slash: the request path is appended to it", () => {
		expect(readOrigin(new SettingReader({ ORIGIN_URL: `${ORIGIN}/base///` })).url).toBe(`${ORIGIN}/base`);
	});

	it.each([`${ORIGIN}/?a=1`, `${ORIGIN}/#top`])("refuses %s: a query or fragment would swallow the request path", (url) => {
		const read = new SettingReader({ ORIGIN_URL: url });
		readOrigin(read);
		expect(read.problems).toEqual(["ORIGIN_URL must not have a query or fragment"]);
	});

	it.each(["https://user:pass@origin.example.com", "https://user@origin.example.com/base", "https://:pass@origin.example.com"])(
		"refuses %s: the origin call would drop the credentials without a word",
		(url) => {
			const read = new SettingReader({ ORIGIN_URL: url });
			readOrigin(read);
			expect(read.problems).toEqual(["ORIGIN_URL must not carry a user name or password"]);
		},
	);

	it("takes a URL whose path has an @ (not a user name)", () => {
		const read = new SettingReader({ ORIGIN_URL: `${ORIGIN}/team@agents` });
		expect(readOrigin(read).url).toBe(`${ORIGIN}/team@agents`);
		expect(read.problems).toEqual([]);
	});
});

describe("SettingReader.integer", () => {
	const env = (value: string): Env => ({ REDIS_REPLAY_TTL: value });

	it("takes the bounds themselves", () => {
		const read = new SettingReader(env("1"));
		expect(read.integer("REDIS_REPLAY_TTL", 300, { min: 1, max: 2 })).toBe(1);
		expect(new SettingReader(env("2")).integer("REDIS_REPLAY_TTL", 300, { min: 1, max: 2 })).toBe(2);
		expect(read.problems).toEqual([]);
	});

	it("refuses one past either bound, naming both, and answers the default", () => {
		for (const value of ["0", "3"]) {
			const read = new SettingReader(env(value));
			expect(read.integer("REDIS_REPLAY_TTL", 300, { min: 1, max: 2 })).toBe(300);
			expect(read.problems).toEqual(["REDIS_REPLAY_TTL must be between 1 and 2"]);
		}
	});
});
