import { describe, expect, it } from "@effect/vitest"
import { ApixoModel } from "@reelkit/apixo"
import { TaskError } from "@reelkit/core"
import { ViduQ3, ViduQ3Input } from "@reelkit/provider-vidu-q3"
import { Arbitrary, Effect, Either, FastCheck, Schema } from "effect"

const prepare = ApixoModel.prepare(ViduQ3.model)
const { rules } = ViduQ3Input

const prepareSync = (input: unknown) => Effect.runSync(Effect.either(prepare({ input })))

const failure = (input: unknown): TaskError.InvalidInput => {
  const result = prepareSync(input)
  if (Either.isRight(result)) throw new Error(`expected ${JSON.stringify(input)} to be rejected`)
  return result.left
}

const text = { mode: "text-to-video", prompt: "a city at dawn" } as const
const image = { mode: "image-to-video", prompt: "make it move", image_urls: ["https://example.com/a.jpg"] } as const

describe("ViduQ3Input", () => {
  it("reports the field path and the rule for every kind of violation", () => {
    const cases: ReadonlyArray<readonly [unknown, string, string]> = [
      [{ ...text, prompt: "" }, "input.prompt", rules.prompt],
      [{ ...text, prompt: "x".repeat(5001) }, "input.prompt", rules.prompt],
      [{ ...text, prompt: 3 }, "input.prompt", rules.prompt],
      [{ ...text, duration: 0 }, "input.duration", rules.duration],
      [{ ...text, duration: 17 }, "input.duration", rules.duration],
      [{ ...text, duration: 4.5 }, "input.duration", rules.duration],
      [{ ...text, duration: "8" }, "input.duration", rules.duration],
      [{ ...text, resolution: "4k" }, "input.resolution", rules.resolution],
      [{ ...text, movement: "huge" }, "input.movement", rules.movement],
      [{ ...text, sound: "yes" }, "input.sound", rules.sound],
      [{ ...text, bgm: 1 }, "input.bgm", rules.bgm],
      [{ ...text, seed: -2 }, "input.seed", rules.seed],
      [{ ...text, seed: 2147483648 }, "input.seed", rules.seed],
      [{ ...text, style: "noir" }, "input.style", rules.style],
      [{ ...text, aspect_ratio: "21:9" }, "input.aspect_ratio", rules.aspect_ratio],
      [{ ...text, image_urls: ["https://example.com/a.jpg"] }, "input.image_urls", rules.image_only],
      [{ ...image, style: "anime" }, "input.style", rules.text_only],
      [{ ...image, aspect_ratio: "16:9" }, "input.aspect_ratio", rules.text_only],
      [{ mode: "turbo-image-to-video", prompt: "x" }, "input.image_urls", rules.image_urls_required],
      [{ ...image, image_urls: [] }, "input.image_urls", rules.image_urls],
      [
        { ...image, image_urls: ["https://a.example/1", "https://a.example/2", "https://a.example/3"] },
        "input.image_urls",
        rules.image_urls
      ],
      [{ ...image, image_urls: ["ftp://example.com/a.jpg"] }, "input.image_urls", rules.image_urls],
      [{ ...image, image_urls: "https://example.com/a.jpg" }, "input.image_urls", rules.image_urls],
      [{ ...text, negative_prompt: "blur" }, "input.negative_prompt", "is not a field of this model"],
      [
        { ...text, mode: "video-to-video" },
        "input.mode",
        `must be "text-to-video" | "turbo-text-to-video" | "image-to-video" | "turbo-image-to-video" (got "video-to-video")`
      ],
      [{ prompt: "x" }, "input.mode", "is required"],
      [null, "input", rules.input],
      // An array is an object without a mode.
      [[text], "input.mode", "is required"]
    ]
    for (const [input, path, rule] of cases) {
      const error = failure(input)
      expect({ path: error.path, rule: error.rule }, JSON.stringify(input).slice(0, 120)).toEqual({ path, rule })
    }
    expect(failure({ ...image, style: "anime" }).message).toBe(
      "Invalid input at input.style: is only allowed in text modes"
    )
    expect(failure({ mode: "image-to-video", prompt: "x" }).message).toBe(
      "Invalid input at input.image_urls: is required in image modes (1 or 2 http(s) URLs)"
    )
    expect(failure({ ...text, duration: 99 }).message).toBe(
      "Invalid input at input.duration: must be an integer from 1 to 16 (seconds)"
    )
  })

  it("accepts the boundaries and omits what the caller omitted", () => {
    for (const input of [
      { ...text, prompt: "x".repeat(5000), duration: 16, seed: 2147483647 },
      { ...text, prompt: "x", duration: 1, seed: -1 },
      { ...image, image_urls: ["http://example.com/first.png", "https://example.com/last.png"] },
      { mode: "turbo-text-to-video", prompt: "x", style: "anime", aspect_ratio: "1:1", sound: false, bgm: false }
    ]) {
      const result = prepareSync(input)
      expect(Either.getOrThrow(result).input).toEqual(input)
    }
    expect(Either.getOrThrow(prepareSync({ ...text, duration: undefined, style: undefined })).input).toEqual(text)
  })

  it("knows each mode's tier", () => {
    expect(ViduQ3Input.tierOf("text-to-video")).toBe("standard")
    expect(ViduQ3Input.tierOf("image-to-video")).toBe("standard")
    expect(ViduQ3Input.tierOf("turbo-text-to-video")).toBe("turbo")
    expect(ViduQ3Input.tierOf("turbo-image-to-video")).toBe("turbo")
  })

  describe("properties", () => {
    const numRuns = 200
    const textInputs = Arbitrary.make(Schema.Union(ViduQ3Input.TextToVideo, ViduQ3Input.TurboTextToVideo))
    const imageInputs = Arbitrary.make(Schema.Union(ViduQ3Input.ImageToVideo, ViduQ3Input.TurboImageToVideo))
    const anyInput = Arbitrary.make(ViduQ3Input.ViduQ3Input)

    const withoutUndefined = (input: object) =>
      Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))

    it("every generated valid input passes prepare, unchanged on the wire, billed by its duration", () => {
      FastCheck.assert(
        FastCheck.property(anyInput, (input) => {
          const prepared = Either.getOrThrow(prepareSync(input))
          expect(prepared.input).toEqual(withoutUndefined(input))
          expect(prepared.wire.body).toEqual({ request_type: "async", input: prepared.input })
          expect(prepared.billableSeconds).toBe(input.duration)
        }),
        { numRuns }
      )
    })

    /** A mutation of a valid input, and the path and rule it must be reported with. */
    type Mutation = { readonly input: unknown; readonly path: string; readonly rule: string }

    const mutations: FastCheck.Arbitrary<Mutation> = FastCheck.oneof(
      FastCheck.tuple(
        anyInput,
        FastCheck.oneof(
          FastCheck.integer({ max: 0 }),
          FastCheck.integer({ min: 17 }),
          FastCheck.double({ min: 1.01, max: 15.99, noNaN: true }).filter((value) => !Number.isInteger(value))
        )
      ).map(([input, duration]) => ({ input: { ...input, duration }, path: "input.duration", rule: rules.duration })),
      FastCheck.tuple(imageInputs, FastCheck.constantFrom("general", "anime")).map(([input, style]) => ({
        input: { ...input, style },
        path: "input.style",
        rule: rules.text_only
      })),
      FastCheck.tuple(imageInputs, FastCheck.constantFrom("16:9", "1:1")).map(([input, aspect_ratio]) => ({
        input: { ...input, aspect_ratio },
        path: "input.aspect_ratio",
        rule: rules.text_only
      })),
      FastCheck.tuple(textInputs, FastCheck.webUrl()).map(([input, url]) => ({
        input: { ...input, image_urls: [url] },
        path: "input.image_urls",
        rule: rules.image_only
      })),
      FastCheck.tuple(imageInputs, FastCheck.array(FastCheck.webUrl(), { minLength: 3, maxLength: 5 })).map(
        ([input, image_urls]) => ({ input: { ...input, image_urls }, path: "input.image_urls", rule: rules.image_urls })
      ),
      imageInputs.map((input) => ({
        input: { ...input, image_urls: [] },
        path: "input.image_urls",
        rule: rules.image_urls
      })),
      FastCheck.tuple(
        imageInputs,
        FastCheck.constantFrom("ftp://example.com/a.jpg", "example.com/a.jpg", "", "file:///a.png")
      ).map(([input, url]) => ({
        input: { ...input, image_urls: [url] },
        path: "input.image_urls",
        rule: rules.image_urls
      })),
      imageInputs.map(({ image_urls: _, ...input }) => ({
        input,
        path: "input.image_urls",
        rule: rules.image_urls_required
      })),
      anyInput.map((input) => ({ input: { ...input, prompt: "" }, path: "input.prompt", rule: rules.prompt })),
      FastCheck.tuple(anyInput, FastCheck.integer({ min: 5001, max: 6000 })).map(([input, length]) => ({
        input: { ...input, prompt: "p".repeat(length) },
        path: "input.prompt",
        rule: rules.prompt
      })),
      FastCheck.tuple(
        anyInput,
        FastCheck.oneof(
          FastCheck.integer({ max: -2 }),
          FastCheck.integer({ min: 1, max: 1_000_000 }).map((n) => 2147483647 + n)
        )
      ).map(([input, seed]) => ({ input: { ...input, seed }, path: "input.seed", rule: rules.seed })),
      FastCheck.tuple(
        anyInput,
        FastCheck.string().filter((value) => !["540p", "720p", "1080p"].includes(value))
      ).map(([input, resolution]) => ({
        input: { ...input, resolution },
        path: "input.resolution",
        rule: rules.resolution
      }))
    )

    it("every mutated input fails with InvalidInput naming the broken field and its rule", () => {
      FastCheck.assert(
        FastCheck.property(mutations, (mutation) => {
          const error = failure(mutation.input)
          expect(error).toBeInstanceOf(TaskError.InvalidInput)
          expect({ path: error.path, rule: error.rule }).toEqual({ path: mutation.path, rule: mutation.rule })
        }),
        { numRuns }
      )
    })
  })
})
