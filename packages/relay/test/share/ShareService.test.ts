import { shareServiceContract } from "@cmdop/domain/testing/ShareServiceContract"
import { freshFixture } from "./fixtures.js"

shareServiceContract("memory", freshFixture("memory"))
shareServiceContract("sqlite", freshFixture("sqlite"))
shareServiceContract("postgres", freshFixture("postgres"))
