// Bundles the CLI (which also hosts `relay serve` and `agent start`) into packages/cli/dist with esbuild:
// - dist/cli.cjs: the whole CLI as one minified CommonJS file (src/bin.ts). What a command does not need sits
//   behind `import()`, which esbuild turns into lazy module initialisers: `connect whoami` never runs grpc-js.
// - dist/agent.cjs: the agent daemon alone (src/agentMain.ts), the same way: what `agent start --foreground` runs
//   (an idle daemon then holds its own code, not the whole CLI's); it hands other command lines to cli.cjs.
// - dist/cmdop.mjs: the launcher (src/boot.ts), which compiles cli.cjs or agent.cjs with V8's code cache
//   (dist/cache/); the cache is why the bundles are CommonJS — Node 20 has none for ES modules.
// - dist/mvdan-sh.cjs and dist/relay-web-assets.cjs: two large, self-contained pieces (the shell parser a gate
//   policy may need, the relay's browser terminal) kept out of cli.cjs, whose source every process reads and
//   keeps in memory; they load with `require` when used.
// `CMDOP_BUILD_META=1` also writes dist/meta.json (esbuild's metafile: what went into the bundle, and its size);
// `CMDOP_BUILD_MINIFY=0` keeps names and esbuild's `// path` markers, for profiles (bench/cpuprof-top.mjs).
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { buildWeb } from "./build-web.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const cli = join(root, "packages", "cli")
const dist = join(cli, "dist")

// The relay's browser terminal first: the CLI embeds it (packages/relay/src/web/assets.generated.ts).
await buildWeb()

// Old chunks and code caches of an earlier build must not survive it.
rmSync(dist, { recursive: true, force: true })

/** Imports that load from a file of their own next to cli.cjs: the specifier's pattern → that file. */
const islands = [
  {
    filter: /^mvdan-sh$/,
    file: "mvdan-sh.cjs",
    entry: createRequire(join(root, "packages", "gate", "x")).resolve("mvdan-sh")
  },
  {
    filter: /^\.\/assets\.generated\.js$/,
    file: "relay-web-assets.cjs",
    entry: join(root, "packages", "relay", "src", "web", "assets.generated.ts")
  }
]
const islandPlugin = {
  name: "islands",
  setup(b) {
    for (const { filter, file } of islands) b.onResolve({ filter }, () => ({ path: `./${file}`, external: true }))
  }
}

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  mainFields: ["module", "main"],
  minify: process.env.CMDOP_BUILD_MINIFY !== "0",
  legalComments: "none",
  logLevel: "warning"
}

/** A CommonJS bundle the launcher compiles (src/boot.ts). */
const launched = (entry, file, extra = {}) =>
  build({
    ...common,
    absWorkingDir: cli,
    entryPoints: [entry],
    outfile: join(dist, file),
    format: "cjs",
    // `import()` of an external becomes `require`: the launcher's vm.Script has no module loader of its own.
    supported: { "dynamic-import": false },
    sourcemap: "linked",
    // The modules were ES modules (strict) in the ESM bundle this replaces; they stay strict.
    banner: { js: '"use strict";' },
    plugins: [islandPlugin],
    // Native or optional-native modules stay outside the bundle and load from node_modules.
    external: [
      "@lydell/node-pty",
      "@node-rs/argon2",
      "@libsql/client",
      "libsql",
      "pg-native",
      "playwright-core",
      "fs-native-extensions",
      "koffi"
    ],
    ...extra
  })

const main = await launched("src/bin.ts", "cli.cjs", { metafile: process.env.CMDOP_BUILD_META === "1" })
const agent = await launched("src/agentMain.ts", "agent.cjs", { metafile: process.env.CMDOP_BUILD_META === "1" })
if (agent.metafile) writeFileSync(join(dist, "agent-meta.json"), JSON.stringify(agent.metafile))
if (main.metafile) writeFileSync(join(dist, "meta.json"), JSON.stringify(main.metafile))

for (const { file, entry } of islands)
  await build({ ...common, absWorkingDir: root, entryPoints: [entry], outfile: join(dist, file), format: "cjs" })

const buildId = createHash("sha256")
  .update(readFileSync(join(dist, "cli.cjs")))
  .update(readFileSync(join(dist, "agent.cjs")))
  .digest("hex")
  .slice(0, 16)
await build({
  ...common,
  absWorkingDir: cli,
  entryPoints: ["src/boot.ts"],
  outfile: join(dist, "cmdop.mjs"),
  format: "esm",
  define: { CMDOP_BUILD_ID: JSON.stringify(buildId) },
  banner: { js: "#!/usr/bin/env node" }
})

// The base code caches (see src/boot.ts): each bundle compiled, nothing run, once per set of V8 flags the launcher
// uses (the daemons' commands differ), so that even a command's first run skips parsing the whole file.
for (const args of [["--version"], ["agent", "start"], ["agent", "start", "--foreground"], ["relay", "serve"], ["up"]])
  execFileSync(process.execPath, [join(dist, "cmdop.mjs"), ...args], {
    env: { ...process.env, CMDOP_BOOT_PRIME: "1" },
    stdio: "inherit"
  })
