// The benchmark's buffering floor: what any verifier must pay at least, the body read whole
// before it is sent on. Shares no code with the gateway.
export default {
	async fetch(request, env) {
		const { pathname, search } = new URL(request.url);
		const body = request.method === "GET" ? null : await request.arrayBuffer();
		return fetch(env.ORIGIN_URL + pathname + search, { method: request.method, headers: request.headers, body });
	},
} satisfies ExportedHandler<{ ORIGIN_URL: string }>;
