// OTLP traces from `reelkit serve`, received by a collector on a real socket in this test: core's
// spans arrive, and neither the access token nor the session cookie is ever in them.
import { describe, expect, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { bearer, formTokens, postForm, startServe } from "./serve.js"
import { tempHome } from "./utils.js"

describe("OpenTelemetry", () => {
  it("with OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports core's spans over OTLP/HTTP, without the token", async () => {
    const bodies: Array<{ readonly path: string; readonly body: string }> = []
    const collector = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        bodies.push({ path: request.url ?? "", body: Buffer.concat(chunks).toString("utf8") })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
    try {
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`
      const served = await startServe(["--port", "0"], {
        REELKIT_HOME: tempHome(),
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint
      })
      let session: string
      try {
        const login = await fetch(`${served.base}/?token=${served.token}`, { redirect: "manual" })
        session = login.headers.get("set-cookie")!.split(";")[0]!
        expect((await fetch(served.base, { headers: { cookie: session } })).status).toBe(200)
        const submitted = await postForm(served, {
          mode: "text-to-video",
          prompt: "a traced lighthouse",
          ...(await formTokens(served))
        })
        expect(submitted.status).toBe(303)
        expect((await fetch(`${served.base}/metrics`, { headers: bearer(served.token) })).status).toBe(200)
      } finally {
        // Stopping serve shuts the tracer provider down, which flushes the batched spans.
        await served.stop()
      }
      const traces = bodies.filter((entry) => entry.path === "/v1/traces")
      expect(traces.length).toBeGreaterThan(0)
      const exported = traces.map((entry) => entry.body).join("\n")
      expect(exported).toContain('"reelkit.start"')
      expect(exported).toContain('"reelkit-playground"')
      expect(exported).not.toContain(served.token)
      expect(exported).not.toContain(session.split("=")[1]!)
    } finally {
      await new Promise((resolve) => collector.close(resolve))
    }
  })
})
