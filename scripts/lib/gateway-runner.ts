import { convertV4MiniflareOptions, Miniflare, NoOpLog } from "miniflare";

export interface RunningGateway {
	mf: Miniflare;
	url: string;
	/** Every line the Worker logged. */
	logs: { level: string; message: string }[];
	/** Fetches through the named Worker (`gateway-0`, `gateway-1`, ...) of this Miniflare. */
	fetch(path: string, init?: RequestInit, worker?: number): Promise<Response>;
	close(): Promise<void>;
}

/**
 * Runs a bundled Worker in workerd through Miniflare's API, on loopback. `isolates`
 * Workers share the one metrics Durable Object namespace (defined by the first), as
 * isolates of one deployment do.
 */
export async function startGateway(
	bindings: Record<string, string>,
	options: {
		scriptPath: string;
		isolates?: number;
		persistTo?: string;
		/** Declare the metrics Durable Object (a Worker that does not export it, such as a benchmark floor, says false). @default true */
		metricsAggregator?: boolean;
		/** Open workerd's inspector (Chrome DevTools Protocol) on this port, 0 for any free one. */
		inspectorPort?: number;
		/** Bind `KEYRING` to this local KV namespace id (kept under `persistTo`, as wrangler keeps it under `<dir>/v3`). */
		keyringNamespace?: string;
		/**
		 * Per Worker (`gateway-0`, `gateway-1`, ...; as many as `isolates` where given): bindings over
		 * the common ones, and a KEYRING namespace of its own, so one workerd runs differently
		 * configured gateways side by side (versions of a deployment during a rollout).
		 */
		workers?: readonly { bindings?: Record<string, string>; keyringNamespace?: string }[];
	},
): Promise<RunningGateway> {
	const { scriptPath } = options;
	const isolates = options.isolates ?? options.workers?.length ?? 1;
	const logs: { level: string; message: string }[] = [];
	// Miniflare 5 takes a new option shape; the v4 shape below is converted by Miniflare itself.
	const mf = new Miniflare(
		convertV4MiniflareOptions({
		host: "127.0.0.1",
		port: 0,
		...(options.persistTo === undefined ? {} : { resourcePersistencePath: options.persistTo }),
		...(options.inspectorPort === undefined ? {} : { inspectorPort: options.inspectorPort }),
		telemetry: { enabled: false },
		// The Worker's log lines are kept for the tests to read, and shown when asked for (GATEWAY_TEST_LOGS=1).
		handleStructuredLogs: ({ level, message }) => {
			logs.push({ level, message });
			if (process.env.GATEWAY_TEST_LOGS === "1") console.log(`[gateway ${level}] ${message}`);
		},
		log: new NoOpLog(),
		workers: Array.from({ length: isolates }, (_, i) => ({
			name: `gateway-${i}`,
			scriptPath,
			modules: true,
			compatibilityDate: "2026-11-01",
			bindings: { ENVIRONMENT: "test", ...bindings, ...options.workers?.[i]?.bindings },
			...((options.workers?.[i]?.keyringNamespace ?? options.keyringNamespace) === undefined
				? {}
				: { kvNamespaces: { KEYRING: (options.workers?.[i]?.keyringNamespace ?? options.keyringNamespace)! } }),
			...(options.metricsAggregator === false ? {} : {
				durableObjects: {
					METRICS_AGGREGATOR: { className: "MetricsAggregator", useSQLite: true, ...(i === 0 ? {} : { scriptName: "gateway-0" }) },
				},
			}),
		})),
		}),
	);
	const url = (await mf.ready).toString().replace(/\/$/, "");
	return {
		mf,
		url,
		logs,
		async fetch(path, init, worker = 0) {
			if (worker === 0) return fetch(url + path, init);
			const target = await mf.getWorker(`gateway-${worker}`);
			return (await target.fetch(`http://gateway.local${path}`, init as never)) as unknown as Response;
		},
		close: () => mf.dispose(),
	};
}
