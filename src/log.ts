/** Structured logs: one JSON object per line, never a secret, token or canonical string. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
	info(message: string, fields?: LogFields): void;
	warn(message: string, fields?: LogFields): void;
	error(message: string, fields?: LogFields): void;
}

function write(level: "info" | "warn" | "error", message: string, fields?: LogFields): void {
	const line = JSON.stringify({ level, message, ...fields });
	if (level === "error") console.error(line);
	else if (level === "warn") console.warn(line);
	else console.log(line);
}

export const consoleLogger: Logger = {
	info: (message, fields) => write("info", message, fields),
	warn: (message, fields) => write("warn", message, fields),
	error: (message, fields) => write("error", message, fields),
};

/**
 * Lets one line per key through every `intervalMs`, and says how many were held back,
 * so a flood of replays or a long outage cannot flood the log.
 */
export class LogThrottle {
	private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();

	private readonly intervalMs: number;
	private readonly now: () => number;

	constructor(intervalMs: number, now: () => number = Date.now) {
		this.intervalMs = intervalMs;
		this.now = now;
	}

	/** The number of lines held back since the last one, or `null` when this one is held back too. */
	admit(key: string): number | null {
		const now = this.now();
		const entry = this.lastLogged.get(key);
		if (entry !== undefined && now - entry.at < this.intervalMs) {
			entry.suppressed++;
			return null;
		}
		const suppressed = entry?.suppressed ?? 0;
		this.lastLogged.set(key, { at: now, suppressed: 0 });
		return suppressed;
	}
}
