import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { keyringNamespaceId } from "../../scripts/lib/keyring-namespace.ts";
import { generateKeyringKey } from "../../src/keyring/sealing.ts";
import { runCli } from "./helpers/cli.ts";

const directory = mkdtempSync(join(tmpdir(), "keyring-config-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const PRODUCTION = [
	"ORIGIN_URL=https://origin.example.com",
	"HMAC_SECRET=a-production-secret-of-40-characters-!!!",
	"METRICS_TOKEN=m",
	"ORIGIN_TOKEN=o",
	"UPSTASH_REDIS_REST_URL=https://x.upstash.io",
	"UPSTASH_REDIS_REST_TOKEN=t",
];

function settingsFile(lines: string[]): string {
	const path = join(directory, `${crypto.randomUUID()}.env`);
	writeFileSync(path, lines.join("\n"));
	return path;
}

describe("wrangler.toml's KEYRING binding", () => {
	const toml = readFileSync("wrangler.toml", "utf8");

	it("is declared at the top level (npm run dev's local namespace) and for each environment, each with its own id", () => {
		const ids = [null, "staging", "production"].map((env) => keyringNamespaceId(toml, env));
		expect(ids.every((id) => id !== null && /^[0-9a-f]{32}$/.test(id))).toBe(true);
		expect(new Set(ids).size).toBe(3);
		expect(keyringNamespaceId(toml, "nowhere")).toBeNull();
	});

	it("is found whatever the order of its keys, and not under another binding's name", () => {
		expect(keyringNamespaceId('[[kv_namespaces]]\nid = "abc"\nbinding = "KEYRING"\n[vars]\nX = "1"')).toBe("abc");
		expect(keyringNamespaceId('[[kv_namespaces]]\nbinding = "OTHER"\nid = "abc"\n')).toBeNull();
		expect(keyringNamespaceId('[[env.staging.kv_namespaces]]\nbinding = "KEYRING"\nid = "s"\n')).toBeNull();
		expect(keyringNamespaceId('[[env.staging.kv_namespaces]]\nbinding = "KEYRING"\nid = "s"\n', "staging")).toBe("s");
	});
});

describe("npm run check-config with KEYRING_KEY", () => {
	it("takes a good key for an environment that binds KEYRING, and refuses a bad one without quoting it", async () => {
		const good = settingsFile([...PRODUCTION, `KEYRING_KEY=${generateKeyringKey()}`]);
		const bad = settingsFile([...PRODUCTION, "KEYRING_KEY=not-a-key-value"]);
		const result = await runCli("check-config", ["--env", "production", good, bad]);
		expect(result.stdout).toBe(`${good}: ok (production)\n`);
		expect(result.stderr).toBe(`${bad}: invalid (production)\n  - KEYRING_KEY must be 32 bytes in base64 (openssl rand -base64 32), or two such keys (new,old) while it is rotated\n`);
		expect(result.code).toBe(1);
	});

	it("refuses a key where wrangler.toml binds no KEYRING namespace", async () => {
		const config = join(directory, "no-keyring.toml");
		writeFileSync(config, '[vars]\nENVIRONMENT = "production"\n');
		const file = settingsFile([...PRODUCTION, `KEYRING_KEY=${generateKeyringKey()}`]);
		const result = await runCli("check-config", ["--config", config, file]);
		expect(result.stderr).toContain("KEYRING_KEY is set but the Worker has no KEYRING binding (a KV namespace)");
		expect(result.code).toBe(1);
	});
});

describe("npm run check-config with the KEYRING binding and no KEYRING_KEY", () => {
	it("warns (the keyring is still read, and an id with a record is refused: 503), so --strict fails; a key, or new,old, is ok", async () => {
		const keyless = settingsFile(PRODUCTION);
		const rotating = settingsFile([...PRODUCTION, `KEYRING_KEY=${generateKeyringKey()},${generateKeyringKey()}`]);
		const plain = await runCli("check-config", ["--env", "production", keyless, rotating]);
		expect(plain.stdout).toBe(
			`${keyless}: ok, with warnings (production)\n  warning: the KEYRING binding is set but KEYRING_KEY is not: every client id that has a keyring record is refused (503 keyring_unavailable); set the key, or remove the binding where no keyring is used\n` +
				`${rotating}: ok (production)\n`,
		);
		expect(plain.code).toBe(0);
		expect((await runCli("check-config", ["--strict", "--env", "production", keyless])).code).toBe(1);
		// Without the binding: no keyring, nothing to warn of.
		const config = join(directory, "no-keyring-either.toml");
		writeFileSync(config, '[vars]\nENVIRONMENT = "production"\n');
		expect((await runCli("check-config", ["--strict", "--config", config, keyless])).stdout).toBe(`${keyless}: ok (production)\n`);
	});
});
