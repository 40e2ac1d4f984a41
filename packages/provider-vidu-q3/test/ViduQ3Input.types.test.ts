// Type-level checks, compiled by `tsc -b` (tsconfig.test.json): impossible combinations do not
// compile. Each `@ts-expect-error` fails the build if the line below it ever type-checks.
import { describe, expectTypeOf, it } from "@effect/vitest"
import { ViduQ3Input } from "@reelkit/provider-vidu-q3"

type Input = ViduQ3Input.ViduQ3Input

describe("ViduQ3Input types", () => {
  it("accepts every documented shape", () => {
    const text: Input = {
      mode: "text-to-video",
      prompt: "a city",
      style: "anime",
      aspect_ratio: "16:9",
      duration: 8,
      resolution: "720p",
      movement: "auto",
      sound: true,
      bgm: false,
      seed: -1
    }
    const oneImage: Input = { mode: "turbo-image-to-video", prompt: "move", image_urls: ["https://a.example/1.png"] }
    const twoImages: Input = {
      mode: "image-to-video",
      prompt: "move",
      image_urls: ["https://a.example/1.png", "https://a.example/2.png"]
    }
    // A const of a union type narrows to the member its value matches.
    expectTypeOf(text).toEqualTypeOf<ViduQ3Input.TextToVideo>()
    expectTypeOf(oneImage).toEqualTypeOf<ViduQ3Input.TurboImageToVideo>()
    expectTypeOf(twoImages).toEqualTypeOf<ViduQ3Input.ImageToVideo>()
  })

  it("rejects impossible combinations at compile time", () => {
    const rejected: Array<Input> = [
      // @ts-expect-error style is only allowed in text modes
      { mode: "image-to-video", prompt: "x", image_urls: ["https://a.example/1.png"], style: "anime" },
      // @ts-expect-error aspect_ratio is only allowed in text modes
      { mode: "turbo-image-to-video", prompt: "x", image_urls: ["https://a.example/1.png"], aspect_ratio: "1:1" },
      // @ts-expect-error image_urls is only allowed in image modes
      { mode: "text-to-video", prompt: "x", image_urls: ["https://a.example/1.png"] },
      // @ts-expect-error image modes require image_urls
      { mode: "image-to-video", prompt: "x" },
      // @ts-expect-error at most 2 image URLs
      { mode: "image-to-video", prompt: "x", image_urls: ["https://a/1", "https://a/2", "https://a/3"] },
      // @ts-expect-error at least 1 image URL
      { mode: "image-to-video", prompt: "x", image_urls: [] },
      // @ts-expect-error unknown mode
      { mode: "video-to-video", prompt: "x" },
      // @ts-expect-error unknown resolution
      { mode: "text-to-video", prompt: "x", resolution: "4k" },
      // @ts-expect-error unknown style
      { mode: "text-to-video", prompt: "x", style: "noir" },
      // @ts-expect-error duration is a number
      { mode: "text-to-video", prompt: "x", duration: "8" },
      // @ts-expect-error prompt is required
      { mode: "text-to-video" }
    ]
    expectTypeOf(rejected).toEqualTypeOf<Array<Input>>()
  })

  it("narrows on mode", () => {
    expectTypeOf<ViduQ3Input.ForMode<"image-to-video">["image_urls"]>().toEqualTypeOf<readonly [string, string?]>()
    expectTypeOf<ViduQ3Input.ForMode<"text-to-video">["style"]>().toEqualTypeOf<"general" | "anime" | undefined>()
    expectTypeOf<ViduQ3Input.ForMode<"turbo-image-to-video">["style"]>().toEqualTypeOf<undefined>()
    expectTypeOf<ViduQ3Input.Mode>().toEqualTypeOf<
      "text-to-video" | "turbo-text-to-video" | "image-to-video" | "turbo-image-to-video"
    >()
    expectTypeOf(ViduQ3Input.tierOf).returns.toEqualTypeOf<ViduQ3Input.Tier>()
  })
})
