import { execFile, spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

export interface CliResult {
	/** Exit status; -1 when the process was ended by a signal (`signal` says which). */
	code: number;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
}

export interface CliOptions {
	/** Added to (and overriding) the test process's environment; an empty string is passed as is. */
	env?: Record<string, string>;
	/** Working directory of the CLI (default: the repository). */
	cwd?: string;
	/** Ends the CLI with SIGTERM after this long (a CLI that should exit but hangs). */
	timeoutMs?: number;
}

/**
 * Runs one of the repository's CLIs as `npm run X -- args` runs it (`node scripts/X.ts args`),
 * and gives its exit status and output, whatever the status.
 */
export function runCli(script: string, args: string[] = [], options: CliOptions = {}): Promise<CliResult> {
	const path = resolve(import.meta.dirname, "../../../scripts", script.endsWith(".ts") ? script : `${script}.ts`);
	return new Promise((done) => {
		execFile(
			process.execPath,
			[path, ...args],
			{ env: { ...process.env, ...options.env }, cwd: options.cwd ?? resolve(import.meta.dirname, "../../.."), timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
			(error, stdout, stderr) => {
				const failed = error as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
				const code = failed === null ? 0 : typeof failed.code === "number" ? failed.code : -1;
				done({ code, signal: failed?.signal ?? null, stdout, stderr });
			},
		);
	});
}

export interface RunningCli {
	child: ChildProcess;
	/** Resolves with the first match of `pattern` in stdout (rejects if the CLI exits first). */
	waitFor(pattern: RegExp): Promise<RegExpExecArray>;
	/** Resolves when the CLI has exited. */
	exited: Promise<CliResult>;
}

/** Starts a long-running CLI (a server) the same way as `runCli`, for tests that signal it. */
export function startCli(script: string, args: string[] = [], options: CliOptions = {}): RunningCli {
	const path = resolve(import.meta.dirname, "../../../scripts", script.endsWith(".ts") ? script : `${script}.ts`);
	const child = spawn(process.execPath, [path, ...args], {
		env: { ...process.env, ...options.env },
		cwd: options.cwd ?? resolve(import.meta.dirname, "../../.."),
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
	child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
	const exited = new Promise<CliResult>((done) => child.on("close", (code, signal) => done({ code: code ?? -1, signal, stdout, stderr })));
	return {
		child,
		exited,
		waitFor(pattern) {
			return new Promise((found, failed) => {
				const look = () => {
					const match = pattern.exec(stdout);
					if (match === null) return;
					child.stdout.off("data", look);
					found(match);
				};
				child.stdout.on("data", look);
				void exited.then((result) => failed(new Error(`${script} exited (${result.code}) before printing ${pattern}: ${result.stderr}`)));
				look();
			});
		},
	};
}
