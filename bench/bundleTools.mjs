// Bundles bench tools (TypeScript files importing the workspace packages) with esbuild, with the settings of
// scripts/build.mjs, so every run measures the checkout as it is. Shared by run.mjs, cluster-lib.mjs,
// agent-alone.mjs and grpc-micro.mjs.
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/**
 * Writes `<name>.mjs` into `outdir` for every `name: "bench/<file>.ts"` of `entryPoints`. `packages` names the
 * workspace packages whose node_modules resolve imports: the packages are linked there, not under the root's.
 */
export const bundleTools = async ({ entryPoints, outdir, packages, external = [], logLevel = "warning" }) => {
  const { build } = await import("esbuild")
  await build({
    absWorkingDir: root,
    entryPoints,
    outdir,
    bundle: true,
    format: "esm",
    platform: "node",
    mainFields: ["module", "main"],
    target: "node20",
    outExtension: { ".js": ".mjs" },
    nodePaths: packages.map((name) => join(root, "packages", name, "node_modules")),
    external,
    banner: {
      js: 'import { createRequire as __cmdopRequire } from "node:module"; const require = __cmdopRequire(import.meta.url);'
    },
    logLevel
  })
}
