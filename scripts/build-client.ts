// Builds dist/ for the "./client" package entry (npm run build:client; prepack runs it).
import { buildClient } from "./lib/build-client.ts";
import { parseOptions, runMain } from "./lib/cli.ts";

const CLI = {
	name: "build-client",
	usage: [
		"usage: npm run build:client -- [--help]",
		"  Builds dist/ as npm pack ships it: dist/client/index.js (one ES module, no runtime dependency),",
		"  its type declarations, and the signature vectors in dist/vectors/ (npm pack runs it first).",
	].join("\n"),
};

runMain(CLI, async () => {
	parseOptions(CLI, {});
	await buildClient();
	return 0;
});
