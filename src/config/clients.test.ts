import { describe, expect, it } from "vitest";
import { readClients } from "./clients.ts";
import { SettingReader } from "./reader.ts";

const secrets = (count: number) => Array.from({ length: count }, (_, i) => `secret-${i}-0123456789abcdef0123456789`);

/** `HMAC_CLIENTS` read in development, where only the hard bounds apply. */
function read(clients: unknown) {
	const reader = new SettingReader({ ENVIRONMENT: "development", HMAC_CLIENTS: JSON.stringify(clients) });
	return { clients: readClients(reader), problems: reader.problems };
}

const ENTRY_PROBLEM = "HMAC_CLIENTS must map each client id to a non-empty secret or a list of 1 to 8 secrets";

describe("readClients: HMAC_CLIENTS's hard bounds, in every environment", () => {
	it("takes a list of 8 secrets, newest first, and a single secret as a list of one", () => {
		const { clients, problems } = read({ svc: secrets(8), solo: "only-secret" });
		expect(problems).toEqual([]);
		expect(clients.get("svc")).toEqual(secrets(8));
		expect(clients.get("solo")).toEqual(["only-secret"]);
	});

	it.each([
		["9 secrets", secrets(9)],
		["an empty list", []],
		["an empty secret", ""],
		["an empty secret in a list", ["a-secret", ""]],
		["a number in a list", ["a-secret", 7]],
		["an object", { secret: "a-secret" }],
	])("refuses %s for a client, naming the rule and keeping the other clients", (_, entry) => {
		const { clients, problems } = read({ svc: entry, other: "other-secret" });
		expect(problems).toEqual([ENTRY_PROBLEM]);
		expect([...clients.keys()]).toEqual(["other"]);
	});
});

describe("readClients: what is not a map of client ids", () => {
	it("refuses an id outside the client id grammar, naming the rule, and keeps the other clients", () => {
		const { clients, problems } = read({ "bad id!": "a-secret", other: "other-secret" });
		expect(problems).toEqual(["HMAC_CLIENTS has a client id outside the client id grammar"]);
		expect([...clients.keys()]).toEqual(["other"]);
	});

	it.each([["an array", ["svc", "a-secret"]], ["a string", "svc"], ["null", null]])("refuses %s: it is not an object of client id to secret", (_, value) => {
		const { clients, problems } = read(value);
		expect(problems).toEqual(["HMAC_CLIENTS must be a JSON object of client id to secret"]);
		expect(clients.size).toBe(0);
	});
});
