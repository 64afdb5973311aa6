// What every CLI of the repository does with its command line: `--help` (or `-h`) prints the
// usage on stdout and exits 0; an unknown or malformed option prints one line and the usage
// on stderr and exits 2, never a stack trace.
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A mistake in how the CLI was called: reported as one line plus the usage, exit status 2. */
export class UsageError extends Error {}

export interface Cli {
	/** The name in messages, e.g. "sign". */
	name: string;
	/** The usage text, printed by --help and after a usage error. */
	usage: string;
}

type WithHelp<O extends ParseArgsOptionsConfig> = O & { help: { type: "boolean"; short: "h" } };

/** The first sentence of Node's parseArgs message, e.g. "Unknown option '--bogus'". */
function oneLine(error: unknown): string {
	const message = error instanceof Error ? error.message : String(error);
	return message.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, "");
}

/** Parses `args` against `options` (strict: no positionals, no unknown options), handling --help. */
export function parseOptions<const O extends ParseArgsOptionsConfig>(
	cli: Cli,
	options: O,
	args: string[] = process.argv.slice(2),
): ParsedValues<O> {
	return parse(cli, options, args, false).values;
}

/** As `parseOptions`, for a CLI that also takes operands (file names): they come in `positionals`. */
export function parseArguments<const O extends ParseArgsOptionsConfig>(
	cli: Cli,
	options: O,
	args: string[] = process.argv.slice(2),
): { values: ParsedValues<O>; positionals: string[] } {
	return parse(cli, options, args, true);
}

type ParsedValues<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: O }>>["values"];

function parse<O extends ParseArgsOptionsConfig>(cli: Cli, options: O, args: string[], allowPositionals: boolean): { values: ParsedValues<O>; positionals: string[] } {
	const config = { args, strict: true as const, allowPositionals, options: { ...options, help: { type: "boolean", short: "h" } } as WithHelp<O> };
	let parsed: { values: { help?: unknown }; positionals: string[] };
	try {
		parsed = parseArgs(config) as typeof parsed;
	} catch (error) {
		exitWithUsage(cli, new UsageError(oneLine(error)));
	}
	if (parsed.values.help === true) {
		console.log(cli.usage);
		process.exit(0);
	}
	delete parsed.values.help;
	return parsed as never;
}

/** Prints `name: message` and the usage on stderr, then exits 2. */
export function exitWithUsage(cli: Cli, error: UsageError): never {
	console.error(`${cli.name}: ${error.message}\n${cli.usage}`);
	return process.exit(2) as never;
}

/**
 * Runs a CLI's main function: its number is the exit status; a UsageError exits 2 with the
 * usage; any other error prints one line (its message) and exits 1.
 */
export function runMain(cli: Cli, main: () => Promise<number>): void {
	main().then(
		(code) => process.exit(code),
		(error: unknown) => {
			if (error instanceof UsageError) exitWithUsage(cli, error);
			console.error(`${cli.name}: ${error instanceof Error ? error.message : String(error)}`);
			process.exit(1);
		},
	);
}

/** A TCP port given on the command line: an integer from 1 to 65535 (0 when `allowZero`). */
export function portOption(name: string, value: string, allowZero = false): number {
	const port = Number(value);
	if (!/^[0-9]+$/.test(value) || port > 65535 || (port === 0 && !allowZero)) throw new UsageError(`--${name} must be a port number (1 to 65535)`);
	return port;
}

/** One line for a server that could not listen: a busy port names the option that changes it. */
export function listenFailure(error: unknown, port: number, option: string): string {
	const code = (error as { code?: string }).code;
	if (code === "EADDRINUSE") return `port ${port} on 127.0.0.1 is already in use; choose another with ${option} N`;
	if (code === "EACCES") return `port ${port} needs privileges; choose another with ${option} N`;
	return `could not listen on port ${port}: ${error instanceof Error ? error.message : String(error)}`;
}

/** The gateway a CLI talks to without `--url`: `GATEWAY_URL` from the environment, else `npm run dev`'s. */
export function defaultGatewayUrl(): string {
	return process.env.GATEWAY_URL || "http://127.0.0.1:8787";
}
