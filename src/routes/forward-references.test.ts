import { describe, expect, it } from "vitest";
import { originAddress, rewriteOriginReferences } from "./forward-references.ts";

describe("rewriteOriginReferences: ORIGIN_URL's own path", () => {
	const origin = originAddress("https://origin.test/base");

	it("is taken off a Location under it, and off the path itself", () => {
		const headers = new Headers({ Location: "https://origin.test/base/agent/x?a=1", "Content-Location": "https://origin.test/base" });
		rewriteOriginReferences(headers, origin);
		expect(headers.get("location")).toBe("/agent/x?a=1");
		expect(headers.get("content-location")).toBe("/");
	});

	it("stays on a path that only starts with the same letters: /basement is not under /base", () => {
		const headers = new Headers({ Location: "https://origin.test/basement/x" });
		rewriteOriginReferences(headers, origin);
		expect(headers.get("location")).toBe("/basement/x");
	});
});
