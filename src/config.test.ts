import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, type Config } from "./config.ts";
import type { Env } from "./env.ts";

const LONG = "a-secret-of-at-least-32-characters";
const LONG2 = "another-secret-of-32-characters!";
const SHORT = "short-secret-31-characters-long";

/** A complete production configuration that passes every rule and warns of nothing. */
const BASE: Env = {
	ENVIRONMENT: "production",
	ORIGIN_URL: "https://origin.example.com",
	ORIGIN_TOKEN: "origin-token",
	HMAC_SECRET: LONG,
	METRICS_TOKEN: "metrics-token",
	UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
	UPSTASH_REDIS_REST_TOKEN: "upstash-token",
};

function problemsOf(env: Env): readonly string[] {
	try {
		loadConfig(env);
	} catch (error) {
		if (error instanceof ConfigError) return error.problems;
		throw error;
	}
	return [];
}

/** Each production refusal: the settings that break it, and the problem named. */
const REFUSALS: [string, Env, string][] = [
	["a short HMAC_SECRET", { HMAC_SECRET: SHORT }, "HMAC_SECRET has a secret shorter than 32 characters"],
	["a short secret in a rotation list", { HMAC_SECRET: `${LONG},${SHORT}` }, "HMAC_SECRET has a secret shorter than 32 characters"],
	["a one-character alias", { HMAC_SECRET: undefined, E2E_SESSION_HMAC_SECRET: "x" }, "E2E_SESSION_HMAC_SECRET has a secret shorter than 32 characters"],
	["a short secret in HMAC_CLIENTS", { HMAC_CLIENTS: JSON.stringify({ svc: [LONG, SHORT] }) }, "HMAC_CLIENTS has a secret shorter than 32 characters"],
	["4 secrets in HMAC_SECRET", { HMAC_SECRET: [1, 2, 3, 4].map((n) => `${LONG}-${n}`).join(",") }, "HMAC_SECRET lists more than 3 secrets"],
	["4 secrets for one client", { HMAC_CLIENTS: JSON.stringify({ svc: [1, 2, 3, 4].map((n) => `${LONG}-${n}`) }) }, "HMAC_CLIENTS lists more than 3 secrets for a client"],
	["a plain-http Upstash URL", { UPSTASH_REDIS_REST_URL: "http://eu1-example.upstash.io" }, "UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback"],
	["a plain-http origin URL", { ORIGIN_URL: "http://origin.example.com" }, "ORIGIN_URL is plain http on a host that is not loopback"],
	["a plain-http origin on 127.0.0.2", { ORIGIN_URL: "http://127.0.0.2:8000" }, "ORIGIN_URL is plain http on a host that is not loopback"],
	// The scheme's letter case does not matter to a URL parser, so it must not matter here.
	["an upper-case HTTP origin URL", { ORIGIN_URL: "HTTP://origin.example.com" }, "ORIGIN_URL is plain http on a host that is not loopback"],
	["a mixed-case Http Upstash URL", { UPSTASH_REDIS_REST_URL: "Http://eu1-example.upstash.io" }, "UPSTASH_REDIS_REST_URL is plain http on a host that is not loopback"],
	["HMAC_MAX_SKEW_MS over an hour", { HMAC_MAX_SKEW_MS: "3600001" }, "HMAC_MAX_SKEW_MS is over 3600000"],
	["MAX_BODY_BYTES over 32 MiB", { MAX_BODY_BYTES: "33554433" }, "MAX_BODY_BYTES is over 33554432"],
];

describe("configuration that fails safe (docs/design.md, \"Configuration\")", () => {
	it("a complete production configuration has no problem and no warning", () => {
		const config = loadConfig(BASE);
		expect(config.isProduction).toBe(true);
		expect(config.warnings).toEqual([]);
	});

	it.each(["production", "Production", "prod", "staging", "PRODUCTION", " development-ish", "Development", "TEST"])(
		"ENVIRONMENT=%j gets production's rules",
		(environment) => {
			const config = loadConfig({ ...BASE, ENVIRONMENT: environment });
			expect(config.isProduction).toBe(true);
			expect(config.testModesAllowed).toBe(false);
			expect(config.isDevelopment).toBe(false);
		},
	);

	it.each(["development", "test"])("ENVIRONMENT=%j exactly relaxes them", (environment) => {
		const config = loadConfig({ ...BASE, ENVIRONMENT: environment });
		expect(config.isProduction).toBe(false);
		expect(config.testModesAllowed).toBe(true);
	});

	describe.each(["production", "Production", "prod", "staging", undefined])("ENVIRONMENT=%j refuses", (environment) => {
		it.each(REFUSALS)("%s, naming the variable, never the value", (_, overrides, problem) => {
			const env = { ...BASE, ENVIRONMENT: environment, ...overrides };
			expect(problemsOf(env)).toEqual([problem]);
			for (const value of Object.values(overrides)) {
				if (value !== undefined) expect(problemsOf(env).join(" ")).not.toContain(value);
			}
		});
	});

	describe.each(["development", "test"])("ENVIRONMENT=%j accepts, with a warning", (environment) => {
		it.each(REFUSALS)("%s", (_, overrides, problem) => {
			const config = loadConfig({ ...BASE, ENVIRONMENT: environment, ...overrides });
			expect(config.warnings).toEqual([`${problem} (refused in production)`]);
		});
	});

	it.each(["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://10.0.0.1", "HTTP://LOCALHOST:8080", "HTTPS://origin.example.com"])(
		"production takes plain http only on loopback: %s",
		(url) => {
			expect(problemsOf({ ...BASE, ORIGIN_URL: url, UPSTASH_REDIS_REST_URL: url })).toEqual([]);
		},
	);

	it("takes the limits themselves: 32-character secrets, 3 per list, an hour of skew, 32 MiB of body", () => {
		const config = loadConfig({
			...BASE,
			HMAC_SECRET: `${LONG},${LONG2},${LONG}3`,
			HMAC_CLIENTS: JSON.stringify({ svc: [LONG, LONG2, `${LONG}3`] }),
			HMAC_MAX_SKEW_MS: "3600000",
			MAX_BODY_BYTES: "33554432",
		});
		expect(LONG2.length).toBe(32);
		expect(SHORT.length).toBe(31);
		expect(config.auth.sharedSecrets).toHaveLength(3);
		expect(config.warnings).toEqual([]);
	});

	it("a whitespace-only HMAC_SECRET does not hide E2E_SESSION_HMAC_SECRET", () => {
		const config = loadConfig({ ...BASE, HMAC_SECRET: "  \t ", E2E_SESSION_HMAC_SECRET: LONG2 });
		expect(config.auth.sharedSecrets).toEqual([LONG2]);
	});

	it.each([
		`{"svc": "${LONG}", "svc": "${LONG2}"}`,
		`{"svc": ["${LONG}"], "other": {"nested": 1}, "svc": "${LONG2}"}`,
		`{"sv\\u0063": "${LONG}", "svc": "${LONG2}"}`,
	])("HMAC_CLIENTS naming a client twice is an error in every environment: %s", (clients) => {
		for (const environment of ["production", "development"]) {
			const problems = problemsOf({ ...BASE, ENVIRONMENT: environment, HMAC_CLIENTS: clients });
			expect(problems).toEqual(["HMAC_CLIENTS names the same client id twice"]);
		}
	});

	it.each([
		["svc", "SVC"],
		["alice", "Alice"],
		["a-b.C_1", "A-B.c_1"],
	])("HMAC_CLIENTS naming %s and %s is an error in every environment, naming the variable, never an id or a secret", (first, second) => {
		const clients = JSON.stringify({ [first]: LONG, [second]: LONG2 });
		for (const environment of ["production", "development"]) {
			const problems = problemsOf({ ...BASE, ENVIRONMENT: environment, HMAC_CLIENTS: clients });
			expect(problems).toEqual(["HMAC_CLIENTS names two client ids that differ only in letter case"]);
			expect(problems.join(" ")).not.toContain(LONG);
		}
	});

	it("client ids that differ by more than letter case are distinct", () => {
		const clients = JSON.stringify({ svc: LONG, svc2: LONG2, "svc-": LONG });
		const config = loadConfig({ ...BASE, HMAC_CLIENTS: clients });
		expect([...config.auth.clientSecrets.keys()]).toEqual(["svc", "svc2", "svc-"]);
	});

	it("nested objects and strings that look like keys are not top-level names", () => {
		const clients = JSON.stringify({ a: LONG, b: [LONG2, "x\",\"a\":\"y".padEnd(32, "-")] });
		const config = loadConfig({ ...BASE, ENVIRONMENT: "development", HMAC_CLIENTS: clients });
		expect([...config.auth.clientSecrets.keys()]).toEqual(["a", "b"]);
	});

	it("warns of what production lacks, one sentence each, never a value", () => {
		const config = loadConfig({ ENVIRONMENT: "prod", ORIGIN_URL: "https://origin.example.com" });
		expect(config.warnings).toEqual([
			"no HMAC secret (HMAC_SECRET or HMAC_CLIENTS): every signed request gets 500 config_error",
			"METRICS_TOKEN is not set: it is required in production, and /metrics answers 500 config_error without it",
			"ORIGIN_TOKEN is not set: the origin cannot tell gateway traffic from direct calls",
			"replay protection uses isolate memory only (no Upstash is configured): a request can be replayed through another isolate",
		]);
		const disabled: Config = loadConfig({ ...BASE, UPSTASH_REDIS_REST_URL: "disabled" });
		expect(disabled.warnings).toEqual([
			"replay protection uses isolate memory only (UPSTASH_REDIS_REST_URL is disabled): a request can be replayed through another isolate",
		]);
		// Development is not warned of what it may lack.
		expect(loadConfig({ ENVIRONMENT: "development", ORIGIN_URL: "https://origin.example.com" }).warnings).toEqual([]);
	});

	it("lists every problem at once", () => {
		const problems = problemsOf({ ...BASE, HMAC_SECRET: SHORT, MAX_BODY_BYTES: "40000000", ORIGIN_URL: "http://origin.example.com" });
		expect(problems).toHaveLength(3);
	});
});
