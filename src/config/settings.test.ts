import { describe, expect, it } from "vitest";
import type { Env } from "../env.ts";
import { readAuth } from "./auth.ts";
import { readKeyring } from "./keyring.ts";
import { readMetrics } from "./metrics.ts";
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

describe("HMAC_SECRET and its alias E2E_SESSION_HMAC_SECRET", () => {
	const A = "a".repeat(32);
	const B = "b".repeat(32);

	it("the alias is used only when HMAC_SECRET is unset (or blank)", () => {
		expect(readAuth(new SettingReader({ HMAC_SECRET: A, E2E_SESSION_HMAC_SECRET: B })).sharedSecrets).toEqual([A]);
		expect(readAuth(new SettingReader({ E2E_SESSION_HMAC_SECRET: B })).sharedSecrets).toEqual([B]);
		expect(readAuth(new SettingReader({ HMAC_SECRET: "  ", E2E_SESSION_HMAC_SECRET: B })).sharedSecrets).toEqual([B]);
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

	it("takes 15 digits; 16 digits, a sign, a fraction or an exponent is not a whole number", () => {
		expect(new SettingReader(env("999999999999999")).integer("REDIS_REPLAY_TTL", 300, { min: 1 })).toBe(999_999_999_999_999);
		for (const value of ["1000000000000000", "+5", "-5", "1.0", "1e3"]) {
			const read = new SettingReader(env(value));
			expect(read.integer("REDIS_REPLAY_TTL", 300, { min: 1 }), value).toBe(300);
			expect(read.problems, value).toEqual(["REDIS_REPLAY_TTL is not a whole number"]);
		}
	});

	it("refuses one past either bound, naming both, and answers the default", () => {
		for (const value of ["0", "3"]) {
			const read = new SettingReader(env(value));
			expect(read.integer("REDIS_REPLAY_TTL", 300, { min: 1, max: 2 })).toBe(300);
			expect(read.problems).toEqual(["REDIS_REPLAY_TTL must be between 1 and 2"]);
		}
	});
});

describe("SettingReader.flag", () => {
	it("reads 1 and true as on; 0, false and unset as off; any other word is a problem, and off", () => {
		const flag = (value: string | undefined) => {
			const read = new SettingReader({ ALLOW_TEST_STUBS: value });
			return [read.flag("ALLOW_TEST_STUBS"), read.problems.length];
		};
		expect([flag("1"), flag("true"), flag("0"), flag("false"), flag(undefined)]).toEqual([[true, 0], [true, 0], [false, 0], [false, 0], [false, 0]]);
		expect(flag("yes")).toEqual([false, 1]);
	});
});

describe("METRICS_SHARDS and UPSTASH_REDIS_REST_URL", () => {
	it("METRICS_SHARDS: 1 to 64", () => {
		expect(readMetrics(new SettingReader({ METRICS_SHARDS: "64" })).shards).toBe(64);
		const read = new SettingReader({ METRICS_SHARDS: "65" });
		expect(readMetrics(read).shards).toBe(1);
		expect(read.problems).toEqual(["METRICS_SHARDS must be between 1 and 64"]);
	});

	it("an UPSTASH_REDIS_REST_URL of another scheme is one problem (not an http(s) URL), never also called plain http; http on loopback is none", () => {
		const read = new SettingReader({ UPSTASH_REDIS_REST_URL: "ftp://redis.example.com", UPSTASH_REDIS_REST_TOKEN: "t" });
		readReplay(read);
		expect(read.problems).toEqual(["UPSTASH_REDIS_REST_URL is not an http(s) URL"]);
		const https = new SettingReader({ UPSTASH_REDIS_REST_URL: "https://redis.example.com", UPSTASH_REDIS_REST_TOKEN: "t" });
		readReplay(https);
		expect(https.problems).toEqual([]);
		const plain = new SettingReader({ UPSTASH_REDIS_REST_URL: "http://redis.example.com", UPSTASH_REDIS_REST_TOKEN: "t" });
		readReplay(plain);
		expect(plain.problems).toEqual(["UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback"]);
	});
});

/** A valid KEYRING_KEY: 32 bytes in base64. */
const KEYRING_KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));

describe("each setting's faults: a problem that names the variable and the fault, never the value", () => {
	const problemsOf = (env: Env, readWith: (read: SettingReader) => unknown) => {
		const read = new SettingReader({ ENVIRONMENT: "test", ...env });
		readWith(read);
		return read.problems;
	};

	it.each<[string, Env, (read: SettingReader) => unknown, string]>([
		["no ORIGIN_URL", {}, readOrigin, "ORIGIN_URL is required"],
		["a forwarded header with an underscore", { ORIGIN_URL: ORIGIN, ORIGIN_FORWARD_HEADERS: "x-trace,x_gateway_token" }, readOrigin, "ORIGIN_FORWARD_HEADERS names a header with an underscore"],
		["a hop-by-hop header forwarded", { ORIGIN_URL: ORIGIN, ORIGIN_FORWARD_HEADERS: "Connection" }, readOrigin, "ORIGIN_FORWARD_HEADERS names a hop-by-hop header"],
		["a header the gateway sets (an X-Forwarded- name)", { ORIGIN_URL: ORIGIN, ORIGIN_FORWARD_HEADERS: "x-forwarded-anything" }, readOrigin, "ORIGIN_FORWARD_HEADERS names a header the gateway sets itself"],
		["a signature header forwarded", { ORIGIN_URL: ORIGIN, ORIGIN_FORWARD_HEADERS: "x-signature" }, readOrigin, "ORIGIN_FORWARD_HEADERS names a signature header (the verifying scheme's go on by themselves)"],
		["an empty entry in a token list", { METRICS_TOKEN: "token-one,,token-two" }, readMetrics, "METRICS_TOKEN has an empty entry in its list"],
		["a token listed twice", { METRICS_TOKEN: "token-one,token-one" }, readMetrics, "METRICS_TOKEN lists the same secret twice"],
		["METRICS_FLUSH_MS past 25 s (a flush must end inside waitUntil)", { METRICS_FLUSH_MS: "25001" }, readMetrics, "METRICS_FLUSH_MS must be between 100 and 25000"],
		["METRICS_FLUSH_MS under 100 ms", { METRICS_FLUSH_MS: "99" }, readMetrics, "METRICS_FLUSH_MS must be between 100 and 25000"],
		["METRICS_TIMEOUT_MS past 30 s", { METRICS_TIMEOUT_MS: "30001" }, readMetrics, "METRICS_TIMEOUT_MS must be between 1 and 30000"],
		["an Upstash URL without its token", { UPSTASH_REDIS_REST_URL: "https://redis.example.com" }, readReplay, "UPSTASH_REDIS_REST_TOKEN is required when UPSTASH_REDIS_REST_URL is set"],
		["the rollback switch in another case (only `disabled` is the switch)", { UPSTASH_REDIS_REST_URL: "Disabled" }, readReplay, "UPSTASH_REDIS_REST_URL is not an http(s) URL"],
		["a breaker that opens after no failure", { REPLAY_BREAKER_FAILURES: "0" }, readReplay, "REPLAY_BREAKER_FAILURES must be at least 1"],
		["a fail mode that is not memory or closed", { REPLAY_FAIL_MODE: "open" }, readReplay, "REPLAY_FAIL_MODE must be memory or closed"],
		["an unknown signature scheme", { SIGNATURE_SCHEMES: "v3" }, readAuth, "SIGNATURE_SCHEMES must be v1, v2 or v1,v2"],
		["MAX_BODY_BYTES past its hard bound (100 MiB), in every environment", { MAX_BODY_BYTES: "104857601" }, readAuth, "MAX_BODY_BYTES must be between 1 and 104857600"],
		["KEYRING_KEY without the KEYRING binding", { KEYRING_KEY }, (read) => readKeyring(read, false), "KEYRING_KEY is set but the Worker has no KEYRING binding (a KV namespace)"],
		["KEYRING_CACHE_MS under 100 ms", { KEYRING_CACHE_MS: "99" }, (read) => readKeyring(read, true), "KEYRING_CACHE_MS must be between 100 and 300000"],
		["KEYRING_CACHE_MAX_ENTRIES past a million", { KEYRING_CACHE_MAX_ENTRIES: "1000001" }, (read) => readKeyring(read, true), "KEYRING_CACHE_MAX_ENTRIES must be between 1 and 1000000"],
		["KEYRING_TIMEOUT_MS past 30 s", { KEYRING_TIMEOUT_MS: "30001" }, (read) => readKeyring(read, true), "KEYRING_TIMEOUT_MS must be between 1 and 30000"],
	])("%s", (_, env, readWith, problem) => {
		expect(problemsOf(env, readWith)).toEqual([problem]);
	});

	it("a setting that is not a string says so, and nothing of what it is", () => {
		const read = new SettingReader({ ORIGIN_TOKEN: { secret: "s3cr3t-value" } as never });
		expect(read.string("ORIGIN_TOKEN")).toBeUndefined();
		expect(read.problems).toEqual(["ORIGIN_TOKEN must be a string"]);
	});
});

describe("the keyring's settings", () => {
	it("unset: 30 s of cache, 10000 entries, 1 s per KV read, no key; the binding without a key is a warning, not a problem", () => {
		const read = new SettingReader({});
		expect(readKeyring(read, true)).toEqual({ keys: [], cacheMs: 30_000, maxEntries: 10_000, timeoutMs: 1_000 });
		expect(read.problems).toEqual([]);
		expect(read.warnings).toHaveLength(1);
		expect(read.warnings[0]).toMatch(/KEYRING binding is set but KEYRING_KEY is not/);
		const without = new SettingReader({});
		readKeyring(without, false);
		expect(without.warnings).toEqual([]);
	});

	it("takes a key with the binding", () => {
		const read = new SettingReader({ KEYRING_KEY });
		expect(readKeyring(read, true).keys).toHaveLength(1);
		expect(read.problems).toEqual([]);
	});
});

describe("the metrics' settings", () => {
	it("unset: no token, a flush every 10 s, 1 s per aggregator call, one shard", () => {
		expect(readMetrics(new SettingReader({}))).toEqual({ tokens: [], flushMs: 10_000, timeoutMs: 1_000, shards: 1 });
	});
});
