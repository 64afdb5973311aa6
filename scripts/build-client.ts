// Builds dist/ for the "./client" package entry (npm run build:client; prepack runs it).
import { buildClient } from "./lib/build-client.ts";

await buildClient();
