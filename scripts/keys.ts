// The keyring's admin CLI (docs/deploy.md, "Keyring"):
//   npm run keys -- add|rotate|revoke|disable|enable|show ID [options]
//   npm run keys -- list [options]
//   npm run keys -- migrate [--file FILE] [options]
// Local namespace (the one npm run dev reads) by default; --remote [--env NAME] for a deployment.
import { existsSync, readFileSync } from "node:fs";
import { importKeyringKey } from "../src/keyring/sealing.ts";
import { readEntry } from "../src/limits/config.ts";
import { exitWithUsage, parseOptions, runMain, UsageError, type Cli } from "./lib/cli.ts";
import { readDevVars } from "./lib/dev-vars.ts";
import { KeyringAdmin, KeyringAdminError, type ClientSummary } from "./lib/keyring-admin.ts";
import { decodeFoundKey, findKeyringKey } from "./lib/keyring-key.ts";
import { DEFAULT_PERSIST_TO, openLocalNamespace, readLocalNamespaceId, wranglerNamespace, type AdminNamespace } from "./lib/keyring-namespace.ts";

const WHERE = [
	"  --persist-to DIR   the local state folder, as wrangler takes it (default .wrangler/state: npm run dev's)",
	"  --remote           a deployed namespace, through wrangler (needs wrangler login or CLOUDFLARE_API_TOKEN)",
	"  --env NAME         with --remote: the environment of wrangler.toml (staging, production)",
	"  --json             output as JSON",
	"  KEYRING_KEY comes from the environment, else (locally only) from .dev.vars.",
].join("\n");

const COMMANDS = {
	add: ["ID [--limits JSON]", "registers ID with a fresh 256-bit secret, printed once"],
	rotate: ["ID", "puts a fresh secret first (printed once); the old ones verify until revoke ID --old"],
	revoke: ["ID [--old]", "removes ID; with --old, drops every secret but the newest"],
	disable: ["ID", "refuses ID (like an unknown client) until enable ID"],
	enable: ["ID", "lets a disabled ID in again"],
	show: ["ID", "prints ID's record, never a secret"],
	list: ["", "prints every client, never a secret"],
	migrate: ["[--file FILE]", "copies HMAC_CLIENTS (from FILE, the environment or .dev.vars) into the keyring, secrets unchanged"],
} as const;
type Command = keyof typeof COMMANDS;

const USAGE = [
	"usage: npm run keys -- COMMAND [ID] [options]",
	"  Manages the gateway's keyring in Workers KV: the local namespace of npm run dev by default.",
	...Object.entries(COMMANDS).map(([name, [args, text]]) => `  ${`${name} ${args}`.padEnd(26)} ${text}`),
	WHERE,
	"  npm run keys -- COMMAND --help describes one command.",
].join("\n");

function commandCli(command: Command): Cli {
	const [args, text] = COMMANDS[command];
	return { name: `keys ${command}`, usage: `usage: npm run keys -- ${command} ${args} [options]\n  ${text}\n${WHERE}` };
}

const COMMON = {
	json: { type: "boolean", default: false },
	remote: { type: "boolean", default: false },
	env: { type: "string" },
	"persist-to": { type: "string" },
} as const;

async function main(): Promise<number> {
	const [command, ...rest] = process.argv.slice(2);
	if (command === undefined) throw new UsageError("name a command");
	if (command === "--help" || command === "-h") {
		console.log(USAGE);
		return 0;
	}
	if (command.startsWith("-")) throw new UsageError(`Unknown option '${command}'`);
	if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
	const name = command as Command;
	const cli = commandCli(name);
	try {
		return await run(name, cli, rest);
	} catch (error) {
		// A mistake in a command's options names the command and shows its usage.
		if (error instanceof UsageError) exitWithUsage(cli, error);
		throw error;
	}
}

async function run(name: Command, cli: Cli, rest: string[]): Promise<number> {
	const takesId = name !== "list" && name !== "migrate";
	const id = takesId && rest[0] !== undefined && !rest[0].startsWith("-") ? rest.shift() : undefined;
	const values = parseOptions(cli, {
		...COMMON,
		...(name === "revoke" ? { old: { type: "boolean", default: false } } : {}),
		...(name === "add" ? { limits: { type: "string" } } : {}),
		...(name === "migrate" ? { file: { type: "string" } } : {}),
	} as typeof COMMON & { old: { type: "boolean"; default: boolean }; limits: { type: "string" }; file: { type: "string" } }, rest);
	if (takesId && id === undefined) throw new UsageError(`${name} needs a client id`);
	if (values.env !== undefined && !values.remote) throw new UsageError("--env goes with --remote (locally, the namespace is wrangler.toml's top-level one)");
	if (values["persist-to"] !== undefined && values.remote) throw new UsageError("--persist-to is for the local namespace, not with --remote");
	const limits = values.limits === undefined ? undefined : parseLimits(values.limits);

	const found = findKeyringKey({ allowDevVars: !values.remote });
	const key = found.text === null ? null : await importKeyringKey(decodeFoundKey({ text: found.text, source: found.source }));
	const namespace = await openNamespace(values.remote, values.env, values["persist-to"]);
	const admin = new KeyringAdmin(namespace, key);
	const print = (json: unknown, text: string) => console.log(values.json ? JSON.stringify(json) : text);
	try {
		switch (name) {
			case "add": {
				const secret = await admin.add(id!, limits === undefined ? {} : { limits });
				print({ id, secret }, `added ${id}\nsecret: ${secret}\nThis secret is shown once: give it to the client now.`);
				break;
			}
			case "rotate": {
				const secret = await admin.rotate(id!);
				print({ id, secret }, `rotated ${id}: the new secret is first, the old ones verify until revoke ${id} --old\nsecret: ${secret}\nThis secret is shown once.`);
				break;
			}
			case "revoke": {
				if (values.old) {
					const dropped = await admin.revokeOld(id!);
					print({ id, dropped }, `${id}: dropped ${dropped} old secret(s); only the newest verifies`);
				} else {
					await admin.revoke(id!);
					print({ id, revoked: true }, `revoked ${id}: its record is gone`);
				}
				break;
			}
			case "disable":
			case "enable":
				await admin.setDisabled(id!, name === "disable");
				print({ id, disabled: name === "disable" }, `${name}d ${id}`);
				break;
			case "show": {
				const client = await admin.show(id!);
				print(client, describe(client));
				break;
			}
			case "list": {
				const { clients, unreadable } = await admin.list();
				print({ clients, unreadable }, [...clients.map(describe), ...unreadable.map((k) => `${k}: not a keyring record`), `${clients.length} client(s)`].join("\n"));
				break;
			}
			case "migrate": {
				// A deployment takes only secrets production accepts (docs/deploy.md, "What production refuses").
				const { added, skipped } = await admin.migrate(hmacClients(values.file, values.remote), { minSecretLength: values.remote ? 32 : 0 });
				print({ added, skipped }, `added ${added.length} client(s) from HMAC_CLIENTS${added.length ? `: ${added.join(", ")}` : ""}` +
					(skipped.length ? `\nleft ${skipped.length} already in the keyring as they are: ${skipped.join(", ")}` : ""));
				break;
			}
		}
	} catch (error) {
		if (error instanceof KeyringAdminError) {
			console.error(`keys ${name}: ${error.message}`);
			return 1;
		}
		throw error;
	} finally {
		await namespace.close();
	}
	return 0;
}

async function openNamespace(remote: boolean, env: string | undefined, persistTo: string | undefined): Promise<AdminNamespace> {
	if (remote) return wranglerNamespace(["--remote", ...(env === undefined ? [] : ["--env", env])]);
	return openLocalNamespace({ persistTo: persistTo ?? DEFAULT_PERSIST_TO, namespaceId: readLocalNamespaceId(process.cwd()) });
}

function parseLimits(text: string): Record<string, unknown> {
	let limits: unknown;
	try {
		limits = JSON.parse(text);
	} catch {
		throw new UsageError("--limits must be a JSON object, e.g. '{\"rpm\":60}'");
	}
	if (typeof limits !== "object" || limits === null || Array.isArray(limits)) throw new UsageError("--limits must be a JSON object, e.g. '{\"rpm\":60}'");
	// The gateway reads a record's limits with CLIENT_LIMITS's rules: refuse here what it would ignore.
	const problems: string[] = [];
	readEntry("record", limits, { problem: (problem) => problems.push(problem), strict: () => {} });
	if (problems.length > 0) throw new UsageError(`--limits: ${problems[0]!.replace(/^CLIENT_LIMITS /, "")}`);
	return limits as Record<string, unknown>;
}

/** HMAC_CLIENTS's JSON: from --file, else the environment, else (locally) .dev.vars. */
function hmacClients(file: string | undefined, remote: boolean): string {
	if (file !== undefined) {
		if (!existsSync(file)) throw new UsageError(`--file ${file} does not exist`);
		return readFileSync(file, "utf8");
	}
	if (process.env.HMAC_CLIENTS?.trim()) return process.env.HMAC_CLIENTS;
	const fromDevVars = remote ? undefined : readDevVars()?.get("HMAC_CLIENTS");
	if (fromDevVars) return fromDevVars;
	throw new UsageError("no HMAC_CLIENTS: set it in the environment or pass --file FILE");
}

function describe(client: ClientSummary): string {
	const secrets = client.secrets === null ? "secrets do not open under this KEYRING_KEY" : `${client.secrets} secret(s)`;
	const limits = client.limits === undefined ? "" : `, limits ${JSON.stringify(client.limits)}`;
	return `${client.id}: ${client.disabled ? "DISABLED" : "enabled"}, ${secrets}${limits}, created ${client.createdAt}, updated ${client.updatedAt}`;
}

runMain({ name: "keys", usage: USAGE }, main);
