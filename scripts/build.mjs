// Bundles the CLI (which also hosts `relay serve` and `agent start`) into packages/cli/dist with esbuild.
// One bundle with code splitting keeps the cold start low: `connect whoami` never loads grpc-js or the relay.
import { build } from "esbuild"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { buildWeb } from "./build-web.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const cli = join(root, "packages", "cli")

// The relay's browser terminal first: the CLI bundle embeds it (packages/relay/src/web/assets.generated.ts).
await buildWeb()

await build({
  absWorkingDir: cli,
  entryPoints: { cmdop: "src/bin.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  mainFields: ["module", "main"],
  target: "node20",
  sourcemap: "linked",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  // Native or optional-native modules stay outside the bundle and load from node_modules.
  external: [
    "@lydell/node-pty",
    "@node-rs/argon2",
    "@libsql/client",
    "libsql",
    "pg-native",
    "playwright-core",
    "fs-native-extensions"
  ],
  banner: {
    js: '#!/usr/bin/env node\nimport { createRequire as __cmdopRequire } from "node:module"; const require = __cmdopRequire(import.meta.url);'
  },
  logLevel: "warning"
})
