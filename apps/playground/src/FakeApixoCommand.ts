/**
 * `reelkit fake-apixo`: the fake apixo server of `@reelkit/testing`, run from the repository with no
 * build, knowing Vidu Q3's input schema: a task whose input breaks it is refused with apixo's 400,
 * and an unknown model id gets a 404. It runs until SIGINT or SIGTERM.
 */
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { FakeApixo } from "@reelkit/testing"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** The models the fake serves, each with the input schema it checks. */
export const models: Readonly<Record<string, FakeApixo.ModelOptions>> = {
  [ViduQ3.modelId]: { inputSchema: ViduQ3Input.ViduQ3Input }
}

/** Runs the fake until the process is told to stop. */
export const fakeApixo = (flags: {
  readonly port: number
  readonly host: string
  readonly processingAfter: number
  readonly completeAfter: number
  readonly failPrompt: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const failPrompt = Option.getOrUndefined(flags.failPrompt)
    const fake = yield* FakeApixo.make({
      port: flags.port,
      host: flags.host,
      models,
      strictModels: true,
      timings: { processingAfter: flags.processingAfter * 1000, completeAfter: flags.completeAfter * 1000 },
      outcome:
        failPrompt === undefined
          ? undefined
          : (task) =>
              String(task.input.prompt ?? "").includes(failPrompt)
                ? FakeApixo.failure("CONTENT_VIOLATION", "Content does not meet safety guidelines")
                : FakeApixo.success()
    })
    // The key is printed on purpose: it is the fake's own test key, needed to call it.
    yield* Effect.sync(() =>
      process.stdout.write(
        `reelkit fake-apixo listening on ${fake.url} (API key: ${FakeApixo.defaultApiKey}; models: ${Object.keys(models).join(", ")})\n`
      )
    )
    // Until Ctrl-C or SIGTERM: the runtime interrupts this and the scope closes the server.
    return yield* Effect.never
  }).pipe(Effect.scoped)
