import http from "node:http";
import type { AddressInfo } from "node:net";

/** A stand-in for the gateway's usage route: keeps every report with its bearer token, answers 200 as the route does. */
export async function usageRoute() {
	const reports: { path: string; authorization: string | undefined; body: unknown }[] = [];
	const server = http.createServer(async (request, response) => {
		const chunks: Buffer[] = [];
		for await (const chunk of request) chunks.push(chunk as Buffer);
		reports.push({ path: `${request.method} ${request.url}`, authorization: request.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
		response.writeHead(200, { "Content-Type": "application/json" }).end('{"settled":true}');
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reports, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
