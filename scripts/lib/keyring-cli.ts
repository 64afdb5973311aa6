// `npm run keys` (docs/deploy.md, "The keyring"), as a function of its arguments, environment
// and folder, so that it runs the same from scripts/keys.ts and in a test's process.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { MAX_SECRETS_PER_CLIENT } from "../../src/keyring/record.ts";
import { importKeyringKey } from "../../src/keyring/sealing.ts";
import { repeatsAName } from "../../src/json-keys.ts";
import { LIMIT_FIELDS, readEntry } from "../../src/limits/config.ts";
import { UsageError } from "./cli.ts";
import { readDevVars } from "./dev-vars.ts";
import { KeyringAdmin, KeyringAdminError, type ClientSummary } from "./keyring-admin.ts";
import { decodeFoundKeys, findKeyringKey } from "./keyring-key.ts";
import { DEFAULT_PERSIST_TO, openLocalNamespace, readLocalNamespaceId, wranglerNamespace, type AdminNamespace } from "./keyring-namespace.ts";

/** Where a run reads its settings and writes its output. */
export interface KeysIo {
	env: Record<string, string | undefined>;
	cwd: string;
	stdout(text: string): void;
	stderr(text: string): void;
}

const WHERE = [
	"  --persist-to DIR   the local state folder, as wrangler takes it (default .wrangler/state: npm run dev's)",
	"  --remote           a deployed namespace, through wrangler (needs wrangler login or CLOUDFLARE_API_TOKEN)",
	"  --env NAME         with --remote: the environment of wrangler.toml (staging, production)",
	"  --json             output as JSON (an error too: {\"error\": ...} on stdout)",
	"  KEYRING_KEY comes from the environment, else (locally only) from .dev.vars; during its own rotation",
	"  it holds two keys, new,old: records open under either and are sealed under the new one.",
].join("\n");

const LIMITS_HELP = [
	`  --limits JSON      the client's limits: one CLIENT_LIMITS entry, any of ${LIMIT_FIELDS.filter((f) => f !== "label").join(", ")}`,
	"                     (README, \"Per-client limits\"), checked with the gateway's own rules; they replace",
	"                     CLIENT_LIMITS's entry for this id as a whole. '{}' or none: CLIENT_LIMITS applies.",
].join("\n");

const COMMANDS = {
	add: ["ID [--limits JSON]", "registers ID with a fresh 256-bit secret, printed once (a revoked ID: anew)"],
	rotate: ["ID", `puts a fresh secret first (printed once); the old ones verify until revoke ID --old (at most ${MAX_SECRETS_PER_CLIENT} secrets)`],
	revoke: ["ID [--old]", "leaves a tombstone: ID is refused whatever signs it, the shared secret too; --old drops every secret but the newest"],
	forget: ["ID", "removes ID's tombstone: ID then falls to HMAC_CLIENTS, then HMAC_SECRET, where they are set"],
	disable: ["ID", "refuses ID (like an unknown client) until enable ID"],
	enable: ["ID", "lets a disabled ID in again"],
	limits: ["ID JSON", "replaces ID's limits, keeping its secrets (JSON as for --limits; '{}' removes them)"],
	show: ["ID", "prints ID's record, never a secret"],
	list: ["", "prints every client, never a secret"],
	migrate: ["[--file FILE]", "copies HMAC_CLIENTS (from FILE, the environment or .dev.vars) into the keyring, secrets unchanged"],
	rekey: ["", "re-seals every record under the first key of KEYRING_KEY, and upgrades records of the first format"],
} as const;
type Command = keyof typeof COMMANDS;

export const KEYS_USAGE = [
	"usage: npm run keys -- COMMAND [ID] [options]",
	"  Manages the gateway's keyring in Workers KV: the local namespace of npm run dev by default.",
	...Object.entries(COMMANDS).map(([name, [args, text]]) => `  ${`${name} ${args}`.padEnd(26)} ${text}`),
	WHERE,
	"  npm run keys -- COMMAND --help describes one command.",
].join("\n");

function commandUsage(command: Command): string {
	const [args, text] = COMMANDS[command];
	const limits = command === "add" || command === "limits" ? `\n${LIMITS_HELP}` : "";
	return `usage: npm run keys -- ${command} ${args} [options]\n  ${text}${limits}\n${WHERE}`;
}

const OPTIONS = {
	json: { type: "boolean", default: false },
	remote: { type: "boolean", default: false },
	env: { type: "string" },
	"persist-to": { type: "string" },
	old: { type: "boolean", default: false },
	limits: { type: "string" },
	file: { type: "string" },
	help: { type: "boolean", short: "h", default: false },
} as const;
/** The options beyond the common ones that each command takes. */
const OWN_OPTIONS: Partial<Record<Command, readonly string[]>> = { revoke: ["old"], add: ["limits"], migrate: ["file"] };

/** When a change reaches the gateway (docs/deploy.md, "The keyring"): what the CLI prints after it. */
function effect(kind: "opens" | "closes" | "none", remote: boolean): string {
	if (kind === "none") return "clients see no change: every record opens as before";
	const propagation = remote ? ", once KV's change reaches the location (up to 60 s)" : "";
	return kind === "opens"
		? `takes effect at once${propagation}: a gateway that cached the id reads it again on a failed signature`
		: `takes effect within KEYRING_CACHE_MS (default 30 s) of each gateway isolate's last read of the id${propagation}`;
}

/** Runs `npm run keys -- args`; the exit status (0, 1 for a refused operation or a failure, 2 for a usage error). */
export async function runKeys(args: string[], io: KeysIo): Promise<number> {
	const json = args.includes("--json");
	const fail = (prefix: string, message: string, usage?: string) => {
		if (json) io.stdout(JSON.stringify({ error: message }));
		io.stderr(`${prefix}: ${message}${usage === undefined ? "" : `\n${usage}`}`);
	};
	const [command, ...rest] = args;
	if (command === "--help" || command === "-h") {
		io.stdout(KEYS_USAGE);
		return 0;
	}
	const known = command !== undefined && Object.hasOwn(COMMANDS, command);
	const prefix = known ? `keys ${command}` : "keys";
	try {
		if (command === undefined) throw new UsageError("name a command");
		if (command.startsWith("-")) throw new UsageError(`Unknown option '${command}'`);
		if (!known) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
		return await run(command as Command, rest, io, json);
	} catch (error) {
		if (error instanceof UsageError) {
			fail(prefix, error.message, known ? commandUsage(command as Command) : KEYS_USAGE);
			return 2;
		}
		if (error instanceof KeyringAdminError) {
			fail(prefix, error.message);
			return 1;
		}
		fail("keys", error instanceof Error ? error.message : String(error));
		return 1;
	}
}

async function run(name: Command, rest: string[], io: KeysIo, json: boolean): Promise<number> {
	const positionals = name === "list" || name === "migrate" || name === "rekey" ? 0 : name === "limits" ? 2 : 1;
	const operands: string[] = [];
	while (operands.length < positionals && rest[0] !== undefined && !rest[0].startsWith("-")) operands.push(rest.shift()!);
	const values = parseCommandOptions(rest);
	if (values.help) {
		io.stdout(commandUsage(name));
		return 0;
	}
	for (const own of ["old", "limits", "file"] as const) {
		const given = own === "old" ? values.old : values[own] !== undefined;
		if (given && !(OWN_OPTIONS[name] ?? []).includes(own)) throw new UsageError(`Unknown option '--${own}'`);
	}
	const [id, limitsText] = operands;
	if (positionals > 0 && id === undefined) throw new UsageError(`${name} needs a client id`);
	if (name === "limits" && limitsText === undefined) throw new UsageError("limits needs the limits as JSON, e.g. '{\"rpm\":60}' ('{}' removes them)");
	const remote = values.remote === true;
	if (values.env !== undefined && !remote) throw new UsageError("--env goes with --remote (locally, the namespace is wrangler.toml's top-level one)");
	if (values["persist-to"] !== undefined && remote) throw new UsageError("--persist-to is for the local namespace, not with --remote");
	const limitsOption = name === "limits" ? limitsText : values.limits;
	const limits = limitsOption === undefined ? undefined : parseLimits(limitsOption, name === "limits" ? "limits" : "--limits");

	const found = findKeyringKey({ env: io.env, allowDevVars: !remote, devVarsPath: resolve(io.cwd, ".dev.vars") });
	const keys = found.text === null ? [] : await Promise.all(decodeFoundKeys({ text: found.text, source: found.source }).map(importKeyringKey));
	const namespace = await openNamespace(io, remote, values.env, values["persist-to"]);
	const admin = new KeyringAdmin(namespace, keys);
	const print = (data: Record<string, unknown>, text: string, kind?: "opens" | "closes" | "none") => {
		const when = kind === undefined ? undefined : effect(kind, remote);
		io.stdout(json ? JSON.stringify(when === undefined ? data : { ...data, effect: when }) : when === undefined ? text : `${text}\n${when}`);
	};
	try {
		switch (name) {
			case "add": {
				const secret = await admin.add(id!, { limits });
				print({ id, secret }, `added ${id}\nsecret: ${secret}\nThis secret is shown once: give it to the client now.`, "opens");
				break;
			}
			case "rotate": {
				const secret = await admin.rotate(id!);
				print({ id, secret }, `rotated ${id}: the new secret is first, the old ones verify until revoke ${id} --old\nsecret: ${secret}\nThis secret is shown once.`, "opens");
				break;
			}
			case "revoke":
				if (values.old) {
					const dropped = await admin.revokeOld(id!);
					print({ id, dropped }, `${id}: dropped ${dropped} old secret(s); only the newest verifies`, "closes");
				} else {
					await admin.revoke(id!);
					print({ id, revoked: true }, `revoked ${id}: its tombstone refuses it whatever signs it, the shared secret too (forget ${id} removes the tombstone)`, "closes");
				}
				break;
			case "forget":
				await admin.forget(id!);
				print({ id, forgotten: true }, `forgot ${id}: the keyring no longer names it, so HMAC_CLIENTS, then HMAC_SECRET, serve it where they are set`, "opens");
				break;
			case "disable":
			case "enable":
				await admin.setDisabled(id!, name === "disable");
				print({ id, disabled: name === "disable" }, `${name}d ${id}`, name === "disable" ? "closes" : "opens");
				break;
			case "limits":
				await admin.setLimits(id!, limits);
				print({ id, limits: limits ?? {} }, `${id}: limits ${JSON.stringify(limits ?? {})}${Object.keys(limits ?? {}).length === 0 ? " (none of its own: CLIENT_LIMITS applies)" : ""}`, "closes");
				break;
			case "show": {
				const client = await admin.show(id!);
				print({ ...client }, describe(client));
				break;
			}
			case "list": {
				const { clients, unreadable } = await admin.list();
				print({ clients, unreadable }, [...clients.map(describe), ...unreadable.map((k) => `${k}: not a keyring record of this format (rekey upgrades one of the first format)`), `${clients.length} client(s)`].join("\n"));
				break;
			}
			case "migrate": {
				// A deployment takes only secrets production accepts (docs/deploy.md, "What production refuses").
				const { added, skipped } = await admin.migrate(hmacClients(io, values.file, remote), { minSecretLength: remote ? 32 : 0 });
				print({ added, skipped }, `added ${added.length} client(s) from HMAC_CLIENTS${added.length ? `: ${added.join(", ")}` : ""}` +
					(skipped.length ? `\nleft ${skipped.length} already in the keyring as they are: ${skipped.join(", ")}` : ""), "opens");
				break;
			}
			case "rekey": {
				const report = await admin.rekey();
				print({ ...report }, [
					`re-sealed ${report.resealed.length} record(s) under the first key${report.resealed.length ? `: ${report.resealed.join(", ")}` : ""}`,
					...(report.upgraded.length ? [`upgraded ${report.upgraded.length} record(s) of the first format: ${report.upgraded.join(", ")}`] : []),
					`${report.current} already under the first key`,
					...(report.unreadable.length ? [`left ${report.unreadable.length} that open under neither key: ${report.unreadable.join(", ")}`] : []),
				].join("\n"), "none");
				return report.unreadable.length > 0 ? 1 : 0;
			}
		}
	} finally {
		await namespace.close();
	}
	return 0;
}

function parseCommandOptions(args: string[]) {
	try {
		return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values;
	} catch (error) {
		// The first sentence of Node's message, e.g. "Unknown option '--bogus'".
		throw new UsageError((error instanceof Error ? error.message : String(error)).split("\n")[0]!.split(". ")[0]!.replace(/\.$/, ""));
	}
}

async function openNamespace(io: KeysIo, remote: boolean, env: string | undefined, persistTo: string | undefined): Promise<AdminNamespace> {
	if (remote) return wranglerNamespace(["--remote", ...(env === undefined ? [] : ["--env", env])], { cwd: io.cwd, env: io.env });
	return openLocalNamespace({ persistTo: resolve(io.cwd, persistTo ?? DEFAULT_PERSIST_TO), namespaceId: readLocalNamespaceId(io.cwd) });
}

/** Limits as the gateway reads a record's: one CLIENT_LIMITS entry, with CLIENT_LIMITS's own parser. */
function parseLimits(text: string, option: string): Record<string, unknown> {
	let limits: unknown;
	try {
		limits = JSON.parse(text);
	} catch {
		throw new UsageError(`${option} must be a JSON object, e.g. '{"rpm":60}'`);
	}
	if (typeof limits !== "object" || limits === null || Array.isArray(limits)) throw new UsageError(`${option} must be a JSON object, e.g. '{"rpm":60}'`);
	if (repeatsAName(text)) throw new UsageError(`${option}: names a field twice`);
	// The gateway reads a record's limits with CLIENT_LIMITS's rules: refuse here what it would ignore.
	const problems: string[] = [];
	readEntry("record", limits, { problem: (problem) => problems.push(problem), strict: () => {} });
	if (problems.length > 0) throw new UsageError(`${option}: ${problems[0]!.replace(/^CLIENT_LIMITS /, "")}`);
	if ("label" in limits) throw new UsageError(`${option}: label belongs to CLIENT_LIMITS alone: a record never makes its id a metric label`);
	return limits as Record<string, unknown>;
}

/** HMAC_CLIENTS's JSON: from --file, else the environment, else (locally) .dev.vars. */
function hmacClients(io: KeysIo, file: string | undefined, remote: boolean): string {
	if (file !== undefined) {
		const path = resolve(io.cwd, file);
		if (!existsSync(path)) throw new UsageError(`--file ${file} does not exist`);
		return readFileSync(path, "utf8");
	}
	if (io.env.HMAC_CLIENTS?.trim()) return io.env.HMAC_CLIENTS;
	const fromDevVars = remote ? undefined : readDevVars(io.cwd)?.get("HMAC_CLIENTS");
	if (fromDevVars) return fromDevVars;
	throw new UsageError("no HMAC_CLIENTS: set it in the environment or pass --file FILE");
}

function describe(client: ClientSummary): string {
	if (client.secrets === null) return `${client.id}: sealed, and it does not open under this KEYRING_KEY (another key, or changed without it)`;
	const state = client.revoked ? "REVOKED (a tombstone)" : client.disabled ? "DISABLED" : "enabled";
	const secrets = client.revoked ? "" : `, ${client.secrets} secret(s)`;
	const limits = client.limits === undefined ? "" : `, limits ${JSON.stringify(client.limits)}`;
	return `${client.id}: ${state}${secrets}${limits}, created ${client.createdAt}, updated ${client.updatedAt}`;
}
