import { describe, expect, it } from "vitest";
import { harness, signedRequest } from "./harness.ts";

describe('test modes (docs/design.md, "Test modes")', () => {
	const stub = {
		reply: "This is a deterministic test reply.",
		citations: [],
		used_context: { month: null },
		tool_trace: [{ tool: "test_stub", status: "ok" }],
		model: "test-stub",
	};

	it.each(["development", "test"])("answers stub and echo without a signature when ENVIRONMENT=%s", async (environment) => {
		const h = harness({ ENVIRONMENT: environment });
		const stubbed = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(stubbed.status).toBe(200);
		expect(stubbed.headers.get("x-auth-mode")).toBe("bypass");
		expect(await stubbed.json()).toEqual(stub);
		const echoed = await h.fetch(
			new Request("https://gateway.test/agent/chat", {
				method: "POST",
				headers: { "X-Test-Mode": "echo" },
				body: JSON.stringify({ messages: [{ role: "user", content: "first" }, { role: "user", content: "last one" }] }),
			}),
		);
		expect(await echoed.json()).toEqual({ ...stub, reply: "[echo] last one", tool_trace: [{ tool: "test_echo", status: "ok" }], model: "test-echo" });
		expect(h.origin.requests).toHaveLength(0);
		expect(h.redis.calls).toHaveLength(0);
	});

	it("answers stub in production only with ALLOW_TEST_STUBS=1", async () => {
		const h = harness({ ALLOW_TEST_STUBS: "1" });
		const response = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(response.status).toBe(200);
	});

	it.each([{}, { ENVIRONMENT: "staging" }, { ENVIRONMENT: "" }])("ignores the header in production-like settings %j", async (overrides) => {
		const h = harness(overrides);
		const unsigned = await h.fetch(new Request("https://gateway.test/agent/chat", { method: "POST", headers: { "X-Test-Mode": "stub" }, body: "{}" }));
		expect(unsigned.status).toBe(401);
		const signed = await h.fetch(await signedRequest({ headers: { "X-Test-Mode": "stub" } }));
		expect(signed.status).toBe(200);
		expect(signed.headers.get("x-auth-mode")).toBe("hmac");
		expect(h.origin.requests).toHaveLength(1);
	});
});
