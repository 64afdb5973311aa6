import { afterEach, describe, expect, it, vi } from "vitest";
import { ReplayStoreError } from "./store.ts";
import { confirmTimeoutMs, createUpstashClient, UpstashReplayStore, type ReplayRedis } from "./upstash.ts";

const store = (result: () => Promise<unknown>) => new UpstashReplayStore({ set: result } satisfies ReplayRedis);
const failsWith = (reason: string) => (error: unknown) => error instanceof ReplayStoreError && error.reason === reason;

describe("UpstashReplayStore", () => {
	it("claims with one SET NX PX, mapping exactly OK to claimed and null to duplicate", async () => {
		const calls: unknown[][] = [];
		const redis = { set: async (...args: unknown[]) => (calls.push(args), "OK") };
		expect(await new UpstashReplayStore(redis satisfies ReplayRedis).claim("k", "v", 1234)).toBe("claimed");
		expect(calls).toEqual([["k", "v", { nx: true, px: 1234 }]]);
		expect(await store(async () => null).claim("k", "v", 1)).toBe("duplicate");
	});

	it("claims or reads with one SET NX PX GET: null when written, else the value found", async () => {
		const calls: unknown[][] = [];
		const redis = { set: async (...args: unknown[]) => (calls.push(args), calls.length === 1 ? null : "c:1:iso:1") };
		const upstash = new UpstashReplayStore(redis satisfies ReplayRedis);
		expect(await upstash.claimOrRead({ key: "k", value: "v", ttlMs: 1234 })).toBeNull();
		expect(await upstash.claimOrRead({ key: "k", value: "v", ttlMs: 1234 })).toBe("c:1:iso:1");
		expect(calls[0]).toEqual(["k", "v", { nx: true, px: 1234, get: true }]);
		await expect(store(async () => 1).claimOrRead({ key: "k", value: "v", ttlMs: 1 })).rejects.toSatisfy(failsWith("error"));
	});

	it.each([["ok"], ["QUEUED"], [""], [1], [undefined], [{ result: "OK" }], ["T0s="]])("treats %j as a store failure, never a claim", async (result) => {
		await expect(store(async () => result).claim("k", "v", 1)).rejects.toSatisfy(failsWith("error"));
	});

	it("tells a timeout (an aborted call) from other failures, for both commands", async () => {
		const timedOut = store(async () => {
			throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
		});
		await expect(timedOut.claim("k", "v", 1)).rejects.toSatisfy(failsWith("timeout"));
		await expect(timedOut.claimOrRead({ key: "k", value: "v", ttlMs: 1 })).rejects.toSatisfy(failsWith("timeout"));
		// The SDK can also surface the abort of its signal as an AbortError.
		const aborted = store(async () => {
			throw new DOMException("This operation was aborted", "AbortError");
		});
		await expect(aborted.claim("k", "v", 1)).rejects.toSatisfy(failsWith("timeout"));
		await expect(aborted.claimOrRead({ key: "k", value: "v", ttlMs: 1 })).rejects.toSatisfy(failsWith("timeout"));
		const refused = store(async () => {
			throw new TypeError("fetch failed");
		});
		await expect(refused.claim("k", "v", 1)).rejects.toSatisfy(failsWith("error"));
		await expect(refused.claimOrRead({ key: "k", value: "v", ttlMs: 1 })).rejects.toSatisfy(failsWith("error"));
	});

	it("gives a confirmation at least a second, and never less than a claim", () => {
		expect(confirmTimeoutMs(200)).toBe(1_000);
		expect(confirmTimeoutMs(5_000)).toBe(5_000);
	});
});

describe("createUpstashClient", () => {
	afterEach(() => {
		vi.unstubAllGlobals();
	});

	it("sends a failed SET once, never again: a retried SET whose first answer was lost would read as a replay", async () => {
		const sent: string[] = [];
		vi.stubGlobal("fetch", async (input: RequestInfo | URL) => {
			sent.push(String(input));
			throw new TypeError("Network connection lost.");
		});
		const upstash = new UpstashReplayStore(createUpstashClient({ url: "https://upstash.test", token: "t", timeoutMs: 200 }));
		await expect(upstash.claim("k", "v", 1000)).rejects.toSatisfy(failsWith("error"));
		expect(sent).toHaveLength(1);
		await expect(upstash.claimOrRead({ key: "k", value: "v", ttlMs: 1000 })).rejects.toSatisfy(failsWith("error"));
		expect(sent).toHaveLength(2);
	});
});

describe("createUpstashClient: two time budgets", () => {
	it("a claim (SET NX, the limits script) gets REPLAY_TIMEOUT_MS; a confirmation (SET NX GET, the script's confirming run) at least a second", async () => {
		const sent: [number, string][] = [];
		const fake = (timeoutMs: number) => ({
			set: async () => (sent.push([timeoutMs, "set"]), "OK"),
			evalsha: async () => (sent.push([timeoutMs, "evalsha"]), []),
			eval: async () => (sent.push([timeoutMs, "eval"]), []),
			zrem: async () => (sent.push([timeoutMs, "zrem"]), 1),
		});
		const client = createUpstashClient({ url: "https://upstash.test", token: "t", timeoutMs: 200, build: fake as never });
		await client.set("k", "v", { nx: true, px: 1 });
		await client.set("k", "v", { nx: true, px: 1, get: true });
		await client.evalsha("sha", [], [], "claim");
		await client.evalsha("sha", [], [], "confirm");
		await client.eval("script", [], []);
		await client.eval("script", [], [], "confirm");
		await client.zrem("k", "m");
		expect(sent).toEqual([
			[200, "set"],
			[1_000, "set"],
			[200, "evalsha"],
			[1_000, "evalsha"],
			[200, "eval"],
			[1_000, "eval"],
			[200, "zrem"],
		]);
	});
});

describe("createUpstashClient: the SDK as set up", () => {
	afterEach(() => {
		vi.unstubAllGlobals();
		vi.restoreAllMocks();
	});

	it("one command per HTTP request at the REST root (no pipeline), no read-your-writes token, the value found returned as stored (no deserialization)", async () => {
		const sent: { url: string; headers: Record<string, string>; body: unknown }[] = [];
		vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
			const headers = Object.fromEntries(new Headers(init?.headers).entries());
			sent.push({ url: String(input), headers, body: JSON.parse(String(init?.body)) });
			const result = sent.length === 1 ? "OK" : "123";
			return Response.json({ result: headers["upstash-encoding"] === "base64" ? btoa(result) : result });
		});
		const upstash = new UpstashReplayStore(createUpstashClient({ url: "https://upstash.test", token: "t", timeoutMs: 200 }));
		expect(await upstash.claim("k", "v", 1000)).toBe("claimed");
		// A value that reads as JSON stays the string stored: deserialized, it would be a number, and not the claim's value.
		expect(await upstash.claimOrRead({ key: "k", value: "v", ttlMs: 1000 })).toBe("123");
		expect(sent.map(({ url, body }) => [url, body])).toEqual([
			["https://upstash.test", ["set", "k", "v", "nx", "px", 1000]],
			["https://upstash.test", ["set", "k", "v", "nx", "get", "px", 1000]],
		]);
		for (const { headers } of sent) expect(Object.keys(headers)).not.toContain("upstash-sync-token");
	});

	it("each call gets a fresh deadline of its own client's budget: a claim REPLAY_TIMEOUT_MS, a confirmation at least a second", async () => {
		const deadlines: number[] = [];
		const timeout = AbortSignal.timeout.bind(AbortSignal);
		vi.spyOn(AbortSignal, "timeout").mockImplementation((ms) => (deadlines.push(ms), timeout(ms)));
		vi.stubGlobal("fetch", async () => Response.json({ result: btoa("OK") }));
		const upstash = new UpstashReplayStore(createUpstashClient({ url: "https://upstash.test", token: "t", timeoutMs: 200 }));
		await upstash.claim("k", "v", 1000);
		await upstash.claim("k", "v", 1000);
		await upstash.claimOrRead({ key: "k", value: "v", ttlMs: 1000 });
		expect(deadlines).toEqual([200, 200, 1_000]);
	});
});
