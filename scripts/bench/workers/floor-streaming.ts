// The benchmark's streaming floor: a passthrough that shares no code with the gateway. The
// request body streams to the origin and the origin's answer comes back as it is.
export default {
	fetch(request, env) {
		const { pathname, search } = new URL(request.url);
		return fetch(env.ORIGIN_URL + pathname + search, { method: request.method, headers: request.headers, body: request.body });
	},
} satisfies ExportedHandler<{ ORIGIN_URL: string }>;
