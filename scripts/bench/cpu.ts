import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

/** Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`, 100 on Linux). */
const TICKS_PER_SEC = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** The workerd processes this process started (Miniflare spawns them as children). */
export function workerdPids(): number[] {
	const found = spawnSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" });
	return found.stdout.trim().split("\n").filter(Boolean).map(Number);
}

/**
 * CPU time (user + system, every thread) a process has used so far, in microseconds, from
 * /proc/<pid>/stat; null where there is no /proc.
 */
export function cpuMicros(pid: number): number | null {
	let stat: string;
	try {
		stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	} catch {
		return null;
	}
	// Fields after the command name, which is in parentheses and may hold spaces: utime and
	// stime are fields 14 and 15 of the line, 12 and 13 after the ")".
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_SEC;
}

/**
 * Gives the workerd processes CPU 1 and this process (the load generator) and `others` CPU 0,
 * so workerd never takes turns with them. False where that is not possible.
 */
export function pinProcesses(workerd: number[], others: (number | undefined)[]): boolean {
	if (cpus().length < 2 || workerd.length === 0) return false;
	if (spawnSync("sh", ["-c", "command -v taskset"], { stdio: "ignore" }).status !== 0) return false;
	for (const pid of workerd) spawnSync("taskset", ["-a", "-p", "-c", "1", String(pid)], { stdio: "ignore" });
	for (const pid of [process.pid, ...others]) if (pid !== undefined) spawnSync("taskset", ["-a", "-p", "-c", "0", String(pid)], { stdio: "ignore" });
	return true;
}
