import { afterEach, describe, expect, it, vi } from "vitest";
import { consoleLogger, LogThrottle } from "./log.ts";

describe("LogThrottle", () => {
	it("lets one line per key through each interval, and says how many were held back since the last one", () => {
		const clock = { now: 1_000 };
		const throttle = new LogThrottle(10_000, () => clock.now);
		expect(throttle.admit("a")).toBe(0);
		expect(throttle.admit("a")).toBeNull();
		clock.now += 9_999;
		expect(throttle.admit("a")).toBeNull();
		// Another key has its own interval.
		expect(throttle.admit("b")).toBe(0);
		clock.now += 1;
		expect(throttle.admit("a")).toBe(2);
		// The count starts again after a line got through.
		clock.now += 10_000;
		expect(throttle.admit("a")).toBe(0);
	});
});

describe("consoleLogger", () => {
	afterEach(() => vi.restoreAllMocks());

	it("writes one JSON object per line, each level to its console method", () => {
		const log = vi.spyOn(console, "log").mockImplementation(() => {});
		const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
		const error = vi.spyOn(console, "error").mockImplementation(() => {});
		consoleLogger.info("started", { store: "upstash" });
		consoleLogger.warn("replay attempt detected", { client_id: "svc" });
		consoleLogger.error("memory replay store refused a claim", { suppressed: 0 });
		expect(log.mock.calls).toEqual([[JSON.stringify({ level: "info", message: "started", store: "upstash" })]]);
		expect(warn.mock.calls).toEqual([[JSON.stringify({ level: "warn", message: "replay attempt detected", client_id: "svc" })]]);
		expect(error.mock.calls).toEqual([[JSON.stringify({ level: "error", message: "memory replay store refused a claim", suppressed: 0 })]]);
	});
});
