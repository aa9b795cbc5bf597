/**
 * `share list` a page at a time, through a real relay process over loopback gRPC: pages follow one another by the
 * cursor the previous one printed ("more: …" for people, `next` in `--json`), every link appears exactly once in
 * creation order, `--all` reads every page, and a bad `--limit` or cursor is one clear error.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { live } from "./World.js"

describe("share list, paged", () => {
  it.scopedLive(
    "pages by --limit and --after (human and --json), --all, and clear errors",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        yield* w.agent(key, "box")
        const minted: Array<string> = []
        for (let i = 0; i < 5; i++) {
          const r = yield* w.cli(key, ["share", "box", "--json"])
          assert.strictEqual(r.code, 0, r.stderr)
          minted.push(JSON.parse(r.stdout).url as string)
        }
        const json = (args: ReadonlyArray<string>) =>
          Effect.map(w.cli(key, ["share", "list", ...args, "--json"]), (r) => {
            assert.strictEqual(r.code, 0, r.stderr)
            return JSON.parse(r.stdout) as { links: Array<{ id: string }>; next: string | null }
          })

        // --json: two pages of two and a last one of one, each pointing at the next.
        const pages: Array<Array<string>> = []
        let after: string | null = null
        do {
          const page: { links: Array<{ id: string }>; next: string | null } = yield* json([
            "--limit",
            "2",
            ...(after === null ? [] : ["--after", after])
          ])
          pages.push(page.links.map((l) => l.id))
          after = page.next
        } while (after !== null)
        assert.deepStrictEqual(
          pages.map((p) => p.length),
          [2, 2, 1]
        )
        const all = yield* json(["--all"])
        assert.isNull(all.next)
        assert.deepStrictEqual(
          pages.flat(),
          all.links.map((l) => l.id)
        )
        assert.strictEqual(new Set(pages.flat()).size, 5)
        // The default page holds them all (the relay's default is 50).
        assert.deepStrictEqual((yield* json([])).links.length, 5)

        // For people: the table, then the command for the next page; following it shows the rest.
        const first = yield* w.cli(key, ["share", "list", "box", "--limit", "3"])
        assert.strictEqual(first.code, 0, first.stderr)
        const more = /^more: (cmdop connect share list box --limit 3 --after (\S+))$/m.exec(first.stdout)
        assert.isNotNull(more, first.stdout)
        for (const id of pages.flat().slice(0, 3)) assert.include(first.stdout, id)
        const second = yield* w.cli(key, ["share", "list", "box", "--limit", "3", "--after", more![2]!])
        assert.strictEqual(second.code, 0, second.stderr)
        assert.notInclude(second.stdout, "more:")
        for (const id of pages.flat().slice(3)) assert.include(second.stdout, id)
        for (const id of pages.flat().slice(0, 3)) assert.notInclude(second.stdout, id)

        // Bad input: one clear error each, naming what is wrong and how to fix it.
        const tooMany = yield* w.cli(key, ["share", "list", "--limit", "501"])
        assert.strictEqual(tooMany.code, 2)
        assert.include(tooMany.stderr, "--limit takes 1 to 500 links per page, not 501")
        const forged = yield* w.cli(key, ["share", "list", "--after", "not-a-cursor"])
        assert.strictEqual(forged.code, 255)
        assert.include(forged.stderr, '"not-a-cursor" is not a share list cursor')
      }),
    60_000
  )
})
