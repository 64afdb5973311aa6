import type { MiddlewareHandler } from "hono";
import { readBodyWithLimit } from "../auth/body.ts";
import type { AuthEvents } from "../events.ts";
import { gatewayError } from "../errors.ts";

export interface TestModesOptions {
	/** True only with `ALLOW_TEST_STUBS=1` or `ENVIRONMENT` development/test; otherwise the header is ignored. */
	allowed: boolean;
	maxBodyBytes: number;
	events: Pick<AuthEvents, "outcome">;
}

const STUB_REPLY = {
	reply: "This is a deterministic test reply.",
	citations: [],
	used_context: { month: null },
	tool_trace: [{ tool: "test_stub", status: "ok" }],
	model: "test-stub",
};

/**
 * `X-Test-Mode: stub | echo` (docs/design.md, "Test modes"): answers without signature check and
 * without calling the origin, where test modes are allowed.
 *
 * @example
 * ```ts
 * app.use("/agent/*", testModes({ allowed: config.testModesAllowed, maxBodyBytes, events }));
 * ```
 */
export const testModes = (options: TestModesOptions): MiddlewareHandler => {
	if (!(options.maxBodyBytes > 0)) throw new Error("testModes: maxBodyBytes must be positive");

	return async function testModes(c, next) {
		const mode = c.req.header("x-test-mode");
		if (!options.allowed || (mode !== "stub" && mode !== "echo")) return next();

		const body = await readBodyWithLimit(c.req.raw, options.maxBodyBytes);
		if (!body.ok) {
			const code = body.reason === "too_large" ? "body_too_large" : "invalid_body";
			options.events.outcome("fail", code);
			throw gatewayError(code);
		}
		options.events.outcome("bypass", mode);
		const reply =
			mode === "stub"
				? STUB_REPLY
				: {
						...STUB_REPLY,
						reply: `[echo] ${lastMessageContent(body.bytes)}`,
						tool_trace: [{ tool: "test_echo", status: "ok" }],
						model: "test-echo",
					};
		return c.json(reply, 200, { "X-Auth-Mode": "bypass" });
	};
};

/** The `content` of the last entry of `messages`, or "" when the body has none. */
function lastMessageContent(bytes: Uint8Array): string {
	try {
		const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
		const messages = (parsed as { messages?: unknown }).messages;
		if (!Array.isArray(messages) || messages.length === 0) return "";
		const content = (messages[messages.length - 1] as { content?: unknown } | null)?.content;
		return typeof content === "string" ? content : "";
	} catch {
		return "";
	}
}
