import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import devVarsExample from "../../.dev.vars.example?raw";
import envSource from "../../src/env.ts?raw";
import { PINNED_SETTINGS, settingNames } from "../fixtures/worker-bindings.ts";

/** The `NAME=value` lines of a dotenv file (comments and blank lines left out). */
const assignments = (text: string) => new Map([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((match) => [match[1]!, match[2]!]));

describe("the workerd tests' settings (vitest.config.ts): pinned or empty, never a developer's .dev.vars", () => {
	const bindings = env as unknown as Record<string, unknown>;

	it("sees every setting of src/env.ts as the config pins it, or empty (unset): none is left for .dev.vars or wrangler.toml to fill", () => {
		const names = settingNames(envSource);
		expect(names).toEqual(expect.arrayContaining(["ORIGIN_TOKEN", "CLIENT_LIMITS", "REPLAY_FAIL_MODE", "ORIGIN_FORWARD_HEADERS", "KEYRING_KEY"]));
		const seen = Object.fromEntries(names.map((name) => [name, bindings[name]]));
		expect(seen).toEqual(Object.fromEntries(names.map((name) => [name, PINNED_SETTINGS[name] ?? ""])));
	});

	it("a setting .dev.vars.example gives (npm run dev copies it to .dev.vars) is empty here: ORIGIN_TOKEN; CLIENT_LIMITS too", () => {
		expect(assignments(devVarsExample).get("ORIGIN_TOKEN")).toBe("dev-origin-token-change-me");
		expect(bindings.ORIGIN_TOKEN).toBe("");
		expect(bindings.CLIENT_LIMITS).toBe("");
		// wrangler.toml's [vars] give REPLAY_FAIL_MODE too: the tests see the Worker's default (unset) instead.
		expect(bindings.REPLAY_FAIL_MODE).toBe("");
	});
});
