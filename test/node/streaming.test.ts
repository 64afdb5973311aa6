import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoOrigin, type DemoOrigin } from "../../scripts/lib/demo-origin.ts";
import { parseExposition, valueOf } from "../fixtures/exposition.ts";
import { signedInit } from "../fixtures/signed.ts";
import { CLIENT_ID, SECRET, startGateway, type RunningGateway } from "./helpers/gateway.ts";
import { until } from "./helpers/until.ts";

/**
 * A streamed answer through the shipped bundle in workerd, against the demo origin (a real HTTP
 * server), in each of the three modes of docs/design.md, "Forwarding": by default the origin's
 * body handed to the runtime; with ORIGIN_STREAM_MAX_MS a native pipe under a total deadline;
 * with ORIGIN_IDLE_MS the idle cut. One gateway per mode, shared by the tests of that mode.
 */
const MODES = {
	default: {},
	deadline: { ORIGIN_STREAM_MAX_MS: "1500" },
	idle: { ORIGIN_IDLE_MS: "400" },
} as const;
type Mode = keyof typeof MODES;
/** The one client with a limit: one request in flight at a time. */
const LIMITED = "limited-client";

let origin: DemoOrigin;
const gateways = new Map<Mode, RunningGateway>();

beforeAll(async () => {
	origin = await startDemoOrigin();
	for (const [mode, bindings] of Object.entries(MODES) as [Mode, Record<string, string>][]) {
		gateways.set(
			mode,
			await startGateway({
				// ORIGIN_URL under /t/<mode>: the origin records each request and how its answer ended.
				ORIGIN_URL: `${origin.url}/t/${mode}`,
				METRICS_FLUSH_MS: "200",
				CLIENT_LIMITS: JSON.stringify({ [LIMITED]: { concurrent: 1 } }),
				...bindings,
			}),
		);
	}
});
afterAll(async () => {
	await Promise.all([...gateways.values()].map((gateway) => gateway.close()));
	await origin?.close();
});

let clock = Date.now();
/** A signed GET of the demo origin's stream, sent to the mode's gateway (a timestamp of its own each time). */
async function stream(mode: Mode, query: string, options: { clientId?: string; signal?: AbortSignal } = {}): Promise<Response> {
	clock = Math.max(clock + 1, Date.now());
	const { init } = await signedInit({ method: "GET", path: "/agent/stream" }, { clientId: options.clientId ?? CLIENT_ID, secret: SECRET, timestamp: clock });
	return gateways.get(mode)!.fetch(`/agent/stream?${query}`, { ...init, signal: options.signal });
}

async function events(response: Response): Promise<string[]> {
	const text = await response.text();
	return text.trim().split("\n").map((line) => (JSON.parse(line) as { type: string }).type);
}

/** The mode's outcome counter, summed once the background flush has it (or after waiting for it). */
async function outcome(mode: Mode, name: string, atLeast = 0): Promise<number> {
	let value = 0;
	await until(async () => {
		const families = parseExposition(await (await gateways.get(mode)!.fetch("/metrics")).text());
		value = valueOf(families, "agent_origin_responses_total", { outcome: name });
		return value >= atLeast;
	}, `${name} to reach ${atLeast}`).catch(() => {});
	return value;
}

/** The status of the limited client's next request, tried until its one slot is free (200) or 3 s pass. */
async function slotFreed(mode: Mode): Promise<number> {
	let next = 0;
	await until(async () => {
		const again = await stream(mode, "tokens=0&interval_ms=0", { clientId: LIMITED });
		next = again.status;
		await again.arrayBuffer();
		return next === 200;
	}, "the slot to be released", 3_000);
	return next;
}

/** How the origin's last answer of the mode ended, once it has. */
async function originEnded(mode: Mode): Promise<string> {
	await until(() => origin.recorded(mode).at(-1)?.answerEnded != null, "the origin's answer to end", 10_000);
	return origin.recorded(mode).at(-1)!.answerEnded!;
}

describe.each(Object.keys(MODES) as Mode[])("a streamed answer, %s mode", (mode) => {
	it("streams: the first event arrives while the origin is still sending, then every event", async () => {
		const response = await stream(mode, "tokens=5&interval_ms=150");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("application/x-ndjson");
		const reader = response.body!.getReader();
		const first = new TextDecoder().decode((await reader.read()).value);
		expect(JSON.parse(first.split("\n")[0]!)).toEqual({ type: "start", model: "demo-origin" });
		expect(origin.recorded(mode).at(-1)?.answerEnded).toBeNull();
		let rest = first;
		for (let next = await reader.read(); !next.done; next = await reader.read()) rest += new TextDecoder().decode(next.value);
		expect(rest.trim().split("\n").map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(["start", "token", "token", "token", "token", "token", "done"]);
		expect(await originEnded(mode)).toBe("finished");
	});

	it("a client that leaves mid-stream cancels the origin, and no cut is counted", async () => {
		const leaving = new AbortController();
		// 100 tokens 100 ms apart: ten seconds of answer, left after the first event.
		const response = await stream(mode, "tokens=100&interval_ms=100", { signal: leaving.signal });
		await response.body!.getReader().read();
		leaving.abort();
		expect(await originEnded(mode)).toBe("closed early");
		expect(await outcome(mode, "stream_cut")).toBe(0);
		expect(await outcome(mode, "stream_deadline")).toBe(0);
	});

	it("a concurrent-limited client's slot is free right after its stream ends", async () => {
		const response = await stream(mode, "tokens=3&interval_ms=50", { clientId: LIMITED });
		expect(response.headers.get("ratelimit")).toBe('"concurrent";r=0');
		// While it streams, the client has no other slot.
		expect((await stream(mode, "tokens=1&interval_ms=0", { clientId: LIMITED })).status).toBe(429);
		expect(await events(response)).toEqual(["start", "token", "token", "token", "done"]);
		// Released in the background as the answer ends: the next request is accepted within moments, not after the lease.
		expect(await slotFreed(mode)).toBe(200);
	});
});

describe("the total deadline (ORIGIN_STREAM_MAX_MS=1500)", () => {
	it("ends the client's answer cleanly at the deadline, closes the origin's connection, and counts stream_deadline", async () => {
		const before = await outcome("deadline", "stream_deadline");
		const types = await events(await stream("deadline", "tokens=100&interval_ms=100"));
		expect(types[0]).toBe("start");
		// Cut: some tokens came, never all of them, and no "done".
		expect(types.length).toBeGreaterThan(2);
		expect(types.length).toBeLessThan(60);
		expect(types).not.toContain("done");
		expect(await originEnded("deadline")).toBe("closed early");
		expect(await outcome("deadline", "stream_deadline", before + 1)).toBe(before + 1);
		expect(await outcome("deadline", "stream_cut")).toBe(0);
	});

	it("a concurrent-limited client's stream past the deadline frees its slot too", async () => {
		const types = await events(await stream("deadline", "tokens=100&interval_ms=100", { clientId: LIMITED }));
		expect(types).not.toContain("done");
		expect(await slotFreed("deadline")).toBe(200);
	});
});

describe("the idle cut (ORIGIN_IDLE_MS=400)", () => {
	it("ends an answer whose origin goes quiet, closes the origin's connection, and counts stream_cut", async () => {
		const before = await outcome("idle", "stream_cut");
		const types = await events(await stream("idle", "tokens=10&interval_ms=50&stall_after=2"));
		expect(types).toEqual(["start", "token", "token"]);
		expect(await originEnded("idle")).toBe("closed early");
		expect(await outcome("idle", "stream_cut", before + 1)).toBe(before + 1);
	});

	it("keeps an answer whose events come closer than the idle limit whole, however long it runs", async () => {
		const types = await events(await stream("idle", "tokens=8&interval_ms=150"));
		expect(types.at(-1)).toBe("done");
		expect(types).toHaveLength(10);
	});
});

describe("the client's address (CF-Connecting-IP)", () => {
	it("reaches the origin only as X-Forwarded-For, the runtime's value: workerd (Miniflare, wrangler dev) keeps a client's own, sets the peer's only when there is none", async () => {
		await (await stream("default", "tokens=0&interval_ms=0")).arrayBuffer();
		const plain = origin.recorded("default").at(-1)!.headers;
		expect(plain["x-forwarded-for"]).toBe("127.0.0.1");
		expect(plain["cf-connecting-ip"]).toBeUndefined();

		clock = Math.max(clock + 1, Date.now());
		const { init } = await signedInit({ method: "GET", path: "/agent/stream" }, { clientId: CLIENT_ID, secret: SECRET, timestamp: clock });
		const response = await gateways.get("default")!.fetch("/agent/stream?tokens=0&interval_ms=0", {
			...init,
			headers: { ...init.headers, "CF-Connecting-IP": "203.0.113.7", "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6" },
		});
		await response.arrayBuffer();
		const claimed = origin.recorded("default").at(-1)!.headers;
		expect(claimed["cf-connecting-ip"]).toBeUndefined();
		expect(claimed["x-real-ip"]).toBeUndefined();
		// Locally the runtime hands the Worker the client's own value; Cloudflare's edge sets its own.
		expect(claimed["x-forwarded-for"]).toBe("203.0.113.7");
	});
});

describe("Accept-Encoding (README, \"Forwarding\")", () => {
	it("reaches the origin as the runtime's own value, whatever the client sent; the client's answer is still the events, as text", async () => {
		const seen: string[] = [];
		for (const acceptEncoding of ["identity", "zstd", "gzip;q=0, identity"]) {
			clock = Math.max(clock + 1, Date.now());
			const { init } = await signedInit({ method: "GET", path: "/agent/stream" }, { clientId: CLIENT_ID, secret: SECRET, timestamp: clock });
			const response = await gateways.get("default")!.fetch("/agent/stream?tokens=1&interval_ms=0", { ...init, headers: { ...init.headers, "Accept-Encoding": acceptEncoding } });
			expect(await events(response)).toEqual(["start", "token", "done"]);
			seen.push(String(origin.recorded("default").at(-1)!.headers["accept-encoding"]));
		}
		expect(seen).toEqual(["br, gzip", "br, gzip", "br, gzip"]);
	});
});
