// The keyring's admin CLI (docs/deploy.md, "The keyring"): `npm run keys -- --help` lists the
// commands. Local namespace (the one npm run dev reads) by default; --remote [--env NAME] for a
// deployment. The command itself is scripts/lib/keyring-cli.ts.
import { runKeys } from "./lib/keyring-cli.ts";

runKeys(process.argv.slice(2), {
	env: process.env,
	cwd: process.cwd(),
	stdout: (text) => console.log(text),
	stderr: (text) => console.error(text),
}).then(
	(code) => process.exit(code),
	(error: unknown) => {
		console.error(`keys: ${error instanceof Error ? error.message : String(error)}`);
		process.exit(1);
	},
);
