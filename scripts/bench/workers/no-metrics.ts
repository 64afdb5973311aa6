// The gateway exactly as it ships, but with metric recording switched off: the benchmark
// compares the two to measure what metrics cost on the request path. Never deployed.
import type { GatewayEvents } from "../../../src/events.ts";
import { consoleLogger } from "../../../src/log.ts";
import { createWorker } from "../../../src/worker.ts";

export { MetricsAggregator } from "../../../src/metrics/aggregator.ts";

const ignored: GatewayEvents = {
	outcome() {},
	skew() {},
	secretSlot() {},
	scheme() {},
	replayAttempt() {},
	storeCall() {},
	fallback() {},
	breakerOpened() {},
	outageReplay() {},
	response() {},
	streamCut() {},
	keyringLookup() {},
	limitRefused() {},
	tokens() {},
};

export default createWorker({ log: consoleLogger, events: ignored });
