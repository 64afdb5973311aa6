import { consoleLogger } from "./log.ts";
import { createWorker } from "./worker.ts";

export { MetricsAggregator } from "./metrics/aggregator.ts";

export default createWorker({ log: consoleLogger });
