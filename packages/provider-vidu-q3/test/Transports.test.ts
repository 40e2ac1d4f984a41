// One end-to-end file, run once per transport (apixo on FakeApixo, the official Vidu API on
// FakeVidu): the same client code, only the provider layer differs. Real sockets, a memory ledger
// and store, the TestClock; waiting is on the client's results and the fakes' recordings.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import {
  AccountLimits,
  ArtifactStore,
  CallbackUrls,
  ResultStorage,
  TaskClient,
  TaskError,
  TaskLedger
} from "@reelkit/core"
import { FakeApixo } from "@reelkit/testing"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Scope, TestClock } from "effect"
import { type Transport, transports } from "./transports.js"

const input = {
  mode: "text-to-video",
  prompt: "a paper boat on a rainy street",
  resolution: "720p",
  duration: 4
} as const

/** Moves the TestClock in steps, letting real sockets progress between them, until the fiber is done. */
const advanceUntilDone = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, step: Duration.DurationInput, maxSteps = 400) =>
  Effect.gen(function* () {
    for (let index = 0; index < maxSteps; index++) {
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return yield* done.value
      yield* Effect.yieldNow()
      yield* TestClock.adjust(step)
    }
    return yield* Effect.dieMessage("still running")
  })

/** A client on the transport's provider, with a memory ledger (shared when given) and result storage. */
const clientOn = (
  transport: Transport,
  fake: { readonly url: string },
  apiKey: Redacted.Redacted<string>,
  ledger: TaskLedger.Service,
  store: ArtifactStore.Service
) =>
  Effect.gen(function* () {
    const layer = TaskClient.layer({
      pollPlan: { firstPollAfter: Duration.seconds(10), interval: Duration.seconds(5) }
    }).pipe(
      Layer.provideMerge(ResultStorage.layer({})),
      Layer.provideMerge(
        Layer.mergeAll(
          transport.layer(fake, apiKey),
          Layer.succeed(TaskLedger.TaskLedger, ledger),
          Layer.succeed(ArtifactStore.ArtifactStore, store),
          AccountLimits.layerMemory(),
          CallbackUrls.layerNone
        )
      ),
      Layer.provideMerge(NodeHttpClient.layerUndici)
    )
    return Context.get(yield* Layer.build(layer), TaskClient.TaskClient)
  })

const setup = (transport: Transport, options: Parameters<Transport["start"]>[0] = {}) =>
  Effect.gen(function* () {
    const fake = yield* transport.start({
      timings: { processingAfter: "5 seconds", completeAfter: "30 seconds" },
      ...options
    })
    const ledger = yield* TaskLedger.makeMemory
    const store = yield* ArtifactStore.makeMemory
    const client = yield* clientOn(transport, fake, fake.apiKey, ledger, store)
    return { fake, ledger, store, client }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined

for (const transport of transports) {
  describe(`end to end on ${transport.name}`, () => {
    it.scoped("generate: one submit, polled to the end, the video stored", () =>
      Effect.gen(function* () {
        const { client, fake, store } = yield* setup(transport)
        const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)), Duration.seconds(5))
        expect(record.state).toBe("completed")
        expect(record.artifacts).toHaveLength(1)
        expect(Option.isSome(yield* store.head(record.artifacts[0]!.key))).toBe(true)
        expect([fake.submits(), fake.created()]).toEqual([1, 1])
        expect(record.providerId).toBe(transport.name)
      })
    )

    it.scoped("a task that fails carries the transport's fail code to the caller and the row", () =>
      Effect.gen(function* () {
        const { client } = yield* setup(transport, { failAll: true })
        const exit = yield* Effect.exit(
          advanceUntilDone(yield* Effect.fork(client.generate(input, { taskKey: "tk_fail" })), Duration.seconds(5))
        )
        expect(failureOf(exit)).toMatchObject({ _tag: "TaskFailed", code: transport.failCode })
        const row = yield* client.lookup("tk_fail")
        expect([row.state, row.failCode]).toEqual(["failed", transport.failCode])
      })
    )

    it.scoped("a wrong key is Unauthorized: the row is rejected, nothing was created", () =>
      Effect.gen(function* () {
        const fake = yield* transport.start({})
        const ledger = yield* TaskLedger.makeMemory
        const client = yield* clientOn(
          transport,
          fake,
          Redacted.make("sk-wrong-key-123456"),
          ledger,
          yield* ArtifactStore.makeMemory
        )
        const exit = yield* Effect.exit(client.start(input, { taskKey: "tk_auth" }))
        expect(failureOf(exit)).toBeInstanceOf(TaskError.Unauthorized)
        expect((yield* client.lookup("tk_auth")).state).toBe("rejected")
        expect([fake.submits(), fake.created()]).toEqual([1, 0])
      })
    )

    it.scoped("an empty balance is InsufficientCredits: rejected, never re-sent", () =>
      Effect.gen(function* () {
        const { client, fake } = yield* setup(transport)
        fake.emptyBalance()
        const exit = yield* Effect.exit(client.start(input, { taskKey: "tk_broke" }))
        expect(failureOf(exit)).toBeInstanceOf(TaskError.InsufficientCredits)
        expect((yield* client.lookup("tk_broke")).state).toBe("rejected")
        expect([fake.submits(), fake.created()]).toEqual([1, 0])
      })
    )

    it.scoped("a 429 on the submit is absorbed: retried after its Retry-After, one task created", () =>
      Effect.gen(function* () {
        const { client, fake } = yield* setup(transport)
        fake.addFault({ match: { route: "generate", nth: 1 }, fault: FakeApixo.rateLimit(3) })
        const record = yield* advanceUntilDone(yield* Effect.fork(client.generate(input)), Duration.seconds(1))
        expect(record.state).toBe("completed")
        expect([fake.submits(), fake.created()]).toEqual([2, 1])
      })
    )

    it.scoped("a client that stops after the submit leaves a row another client's reconcile finishes, sent once", () =>
      Effect.gen(function* () {
        const fake = yield* transport.start({ timings: { processingAfter: "5 seconds", completeAfter: "30 seconds" } })
        const ledger = yield* TaskLedger.makeMemory
        const store = yield* ArtifactStore.makeMemory
        // The first client lives in its own scope: closing it is this process going away mid-task.
        const firstScope = yield* Scope.make()
        const first = yield* clientOn(transport, fake, fake.apiKey, ledger, store).pipe(Scope.extend(firstScope))
        const handle = yield* first.start(input, { taskKey: "tk_killed" }).pipe(Scope.extend(firstScope))
        yield* Scope.close(firstScope, Exit.void)
        expect((yield* Effect.map(ledger.get("tk_killed"), Option.getOrThrow)).state).toBe("submitted")
        const second = yield* clientOn(transport, fake, fake.apiKey, ledger, store)
        const summary = yield* advanceUntilDone(yield* Effect.fork(second.reconcile()), Duration.seconds(5))
        expect(summary.completed).toEqual(["tk_killed"])
        const row = yield* second.lookup("tk_killed")
        expect([row.state, row.remoteTaskId]).toEqual(["completed", handle.remoteTaskId])
        expect([fake.submits(), fake.created()]).toEqual([1, 1])
      })
    )
  })
}
