// A CPU profile of a Worker under load, through workerd's inspector (the Chrome DevTools
// Protocol that Miniflare opens with `inspectorPort`).
import { writeFileSync } from "node:fs";
import type { RunningGateway } from "../lib/gateway-runner.ts";

/** One function's share of the samples. */
export interface ProfileEntry {
	/** `name (file:line)`, as DevTools shows it. */
	fn: string;
	selfMs: number;
	/** Of all samples but idle ones. */
	selfPercent: number;
}

export interface ProfileSummary {
	scenario: string;
	/** Busy time in the profile (every sample but `(idle)`), in milliseconds. */
	busyMs: number;
	requests: number;
	top: ProfileEntry[];
	/** Where the raw profile was written (open it in Chrome DevTools). */
	file: string;
}

export interface CpuProfile {
	nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
	samples: number[];
	timeDeltas: number[];
}

/** The sampling interval asked of the inspector, in microseconds. */
const SAMPLING_US = 100;

/** Profiles `gateway` (started with `inspectorPort`) while `work` runs; returns the top functions by self time. */
export async function profileWhile(gateway: RunningGateway, scenario: string, work: () => Promise<number>, options: { file: string; top?: number }): Promise<ProfileSummary> {
	const inspector = await gateway.mf.getInspectorURL();
	const listed = (await (await fetch(`http://${inspector.host}/json/list`)).json()) as { id: string; title?: string; webSocketDebuggerUrl?: string }[];
	// workerd lists one target per Worker; the benchmarked one is `gateway-0`.
	const target = listed.find((entry) => `${entry.id} ${entry.title ?? ""}`.includes("gateway-0")) ?? listed[0];
	if (target === undefined) throw new Error("profile: workerd's inspector lists no Worker");
	const session = await connect(target.webSocketDebuggerUrl ?? `ws://${inspector.host}/${target.id}`);
	try {
		await session.send("Profiler.enable");
		await session.send("Profiler.setSamplingInterval", { interval: SAMPLING_US });
		await session.send("Profiler.start");
		const requests = await work();
		const { profile } = (await session.send("Profiler.stop")) as { profile: CpuProfile };
		writeFileSync(options.file, JSON.stringify(profile));
		return { scenario, requests, file: options.file, ...selfTimes(profile, options.top ?? 15) };
	} finally {
		session.close();
	}
}

/**
 * Self time per function (name, file and line), summed over the nodes of the call tree. A sample
 * stands for the time since the one before, at most two sampling intervals: while workerd's
 * thread is outside the isolate (waiting for I/O, or pumping a stream natively), V8 takes no
 * samples, and that gap is not the next function's time.
 */
export function selfTimes(profile: CpuProfile, top: number, samplingUs = SAMPLING_US): { busyMs: number; top: ProfileEntry[] } {
	const byNode = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
	const totals = new Map<string, number>();
	let busyUs = 0;
	profile.samples.forEach((id, i) => {
		const frame = byNode.get(id);
		const micros = Math.min(profile.timeDeltas[i] ?? 0, 2 * samplingUs);
		if (frame === undefined || frame.functionName === "(idle)") return;
		const file = frame.url === "" ? "" : ` (${frame.url.split("/").at(-1)}:${frame.lineNumber + 1})`;
		const key = `${frame.functionName || "(anonymous)"}${file}`;
		totals.set(key, (totals.get(key) ?? 0) + micros);
		busyUs += micros;
	});
	const entries = [...totals].sort((a, b) => b[1] - a[1]).slice(0, top);
	return { busyMs: busyUs / 1000, top: entries.map(([fn, micros]) => ({ fn, selfMs: micros / 1000, selfPercent: (100 * micros) / Math.max(1, busyUs) })) };
}

export interface Session {
	send(method: string, params?: object): Promise<unknown>;
	close(): void;
}

export function connect(url: string): Promise<Session> {
	return new Promise((resolve, reject) => {
		const socket = new WebSocket(url);
		const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
		let next = 1;
		socket.addEventListener("message", (event) => {
			const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
			const pending = message.id === undefined ? undefined : waiting.get(message.id);
			if (pending === undefined) return;
			waiting.delete(message.id!);
			if (message.error) pending.reject(new Error(`inspector: ${message.error.message}`));
			else pending.resolve(message.result);
		});
		socket.addEventListener("error", () => reject(new Error(`inspector: cannot connect to ${url}`)));
		socket.addEventListener("open", () =>
			resolve({
				send(method, params = {}) {
					const id = next++;
					socket.send(JSON.stringify({ id, method, params }));
					return new Promise((resolveCall, rejectCall) => waiting.set(id, { resolve: resolveCall, reject: rejectCall }));
				},
				close: () => socket.close(),
			}),
		);
	});
}
