import { describe, expect, it } from "vitest";
import { clientAnswer } from "./forward-answer.ts";
import { originAddress } from "./forward-references.ts";

const origin = originAddress("https://origin.test");
const bounds = { idleMs: null, deadline: null, onCut() {} };

describe("clientAnswer: an origin's Connection list", () => {
	it("drops the headers it names, and skips an entry that is no header name (an empty one, `b@d`) rather than failing the answer", async () => {
		const response = new Response("hello", {
			headers: { Connection: "x-private, , b@d, X-Other", "X-Private": "1", "X-Other": "2", "X-Kept": "3", "Content-Length": "5" },
		});
		const answer = clientAnswer(response, origin, bounds);
		expect([...answer.headers.keys()].sort()).toEqual(["content-length", "content-type", "x-auth-mode", "x-kept"]);
		expect(await answer.text()).toBe("hello");
	});
});

describe("clientAnswer: headers never passed on", () => {
	it("no hop-by-hop header (each named here), Alt-Svc or Server reaches the client; the others do", () => {
		const hopByHop = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];
		const headers = new Headers([...hopByHop, "alt-svc", "server"].map((name) => [name, "x"]));
		headers.set("x-kept", "1");
		const answer = clientAnswer(new Response(null, { headers }), origin, bounds);
		expect([...answer.headers.keys()].sort()).toEqual(["x-auth-mode", "x-kept"]);
	});
});
