// Download benchmark: a 512 MB file served over loopback, fetched by `curl -s -o` and by reelkit
// (@effect/platform HttpClient streaming into the FileSystemStore), with throughput for both and the
// peak RSS growth of this process during reelkit's download. Prints figures only.
//
//   pnpm --filter @reelkit/storage bench            (BENCH_MB=128 for a smaller file)
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, type Layer, Redacted } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { S3Client } from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import {
  closeSync,
  createReadStream,
  fsyncSync,
  createWriteStream,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeSync
} from "node:fs"
import { request } from "node:http"
import { PassThrough, Transform } from "node:stream"
import { pipeline } from "node:stream/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ArtifactStore, ResultStorage, TaskLedger } from "@reelkit/core"
import * as FileSystemStore from "../src/FileSystemStore.js"
import * as S3Store from "../src/S3Store.js"

const megabytes = Number(process.env.BENCH_MB ?? 512)
const size = megabytes * 1024 * 1024
const dir = mkdtempSync(join(tmpdir(), "reelkit-bench-"))
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined)
const mbPerSecond = (bytes: number, millis: number) => bytes / (1024 * 1024) / (millis / 1000)
const now = () => performance.now()

// The source file: pseudo-random 8 MiB blocks (incompressible, cheap to make).
const source = join(dir, "source.mp4")
const sourceHash = createHash("sha256")
{
  const fd = openSync(source, "w")
  const block = Buffer.alloc(8 * 1024 * 1024)
  for (let written = 0, seed = 1; written < size; seed++) {
    let state = seed
    for (let index = 0; index < block.length; index += 4) {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
      block.writeUInt32LE(state, index)
    }
    const part = block.subarray(0, Math.min(block.length, size - written))
    writeSync(fd, part)
    sourceHash.update(part)
    written += part.length
  }
  closeSync(fd)
}
const expectedSha256 = sourceHash.digest("hex")

// The server runs in a child process, so neither client shares its event loop with it.
const serverScript = `
const http = require("node:http"); const fs = require("node:fs");
const server = http.createServer((request, response) => {
  const limit = Number(new URL(request.url, "http://x").searchParams.get("bytes") ?? Number.NaN);
  const size = Number.isFinite(limit) ? limit : fs.statSync(process.argv[1]).size;
  response.writeHead(200, { "content-type": "video/mp4", "content-length": size });
  fs.createReadStream(process.argv[1], { highWaterMark: 256 * 1024, end: size - 1 }).pipe(response);
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`
const server = spawn(process.execPath, ["-e", serverScript, source], { stdio: ["ignore", "pipe", "inherit"] })
const port = await new Promise<number>((resolve) =>
  server.stdout!.once("data", (data) => resolve(Number(String(data))))
)
const url = `http://127.0.0.1:${port}/video.mp4`

const curl = () => {
  const target = join(dir, "curl.mp4")
  const start = now()
  execFileSync("curl", ["-s", "-o", target, url])
  const millis = now() - start
  const bytes = statSync(target).size
  rmSync(target)
  return mbPerSecond(bytes, millis)
}

// Plain Node for calibration: node:http piped through a sha256 transform into a write stream, no
// Effect, no fsync. What any Node implementation can hope for on this machine.
const plainNode = () =>
  new Promise<number>((resolve, reject) => {
    const target = join(dir, "plain.mp4")
    const hash = createHash("sha256")
    const start = now()
    request(url, (response) => {
      pipeline(
        response,
        new Transform({
          transform(chunk, _encoding, callback) {
            hash.update(chunk)
            callback(null, chunk)
          }
        }),
        createWriteStream(target)
      ).then(() => {
        const millis = now() - start
        const bytes = statSync(target).size
        rmSync(target)
        if (hash.digest("hex") !== expectedSha256) reject(new Error("checksum mismatch for plain Node"))
        resolve(mbPerSecond(bytes, millis))
      }, reject)
    })
      .on("error", reject)
      .end()
  })

// The durable baseline: curl -o, then an fsync of the file it wrote (what the store guarantees).
const curlFsync = () => {
  const target = join(dir, "curl-fsync.mp4")
  const start = now()
  execFileSync("curl", ["-s", "-o", target, url])
  const fd = openSync(target, "r+")
  fsyncSync(fd)
  closeSync(fd)
  const millis = now() - start
  const bytes = statSync(target).size
  rmSync(target)
  return mbPerSecond(bytes, millis)
}

// A succeeded task whose one output is the file: the path TaskClient takes (ResultStorage, with
// its resume wrapper, into the store), not only the store.
const benchTask = new TaskLedger.TaskRecord({
  ...TaskLedger.newRecord({ taskKey: "bench", providerId: "bench", modelId: "bench", input: {} }, 0),
  state: "succeeded",
  resultUrls: [url]
})

const reelkit = (label: string, clientLayer: Layer.Layer<HttpClient.HttpClient>, fsync: boolean, viaResults = false) =>
  Effect.gen(function* () {
    const store = yield* FileSystemStore.make({ root: join(dir, "store"), fsync })
    const client = yield* HttpClient.HttpClient
    gc()
    const baseline = process.memoryUsage.rss()
    let peak = baseline
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
    }, 10)
    const start = now()
    const metadata = viaResults
      ? (yield* ResultStorage.storeResults(benchTask, { keyFor: () => `bench/${label}.mp4`, maxBytes: size }).pipe(
          Effect.provideService(ArtifactStore.ArtifactStore, store),
          Effect.provideService(HttpClient.HttpClient, client)
        ))[0]!
      : yield* store.put(`bench/${label}.mp4`, HttpClientResponse.stream(client.get(url)), {
          contentType: "video/mp4",
          sourceUrl: url,
          maxBytes: size
        })
    const millis = now() - start
    clearInterval(sampler)
    peak = Math.max(peak, process.memoryUsage.rss())
    if (metadata.sha256 !== expectedSha256) throw new Error(`checksum mismatch for ${label}`)
    yield* store.delete(`bench/${label}.mp4`)
    return { throughput: mbPerSecond(metadata.bytes, millis), rssGrowth: (peak - baseline) / (1024 * 1024) }
  }).pipe(Effect.provide(clientLayer))

// S3: the same download into S3Store (multipart Upload) on s3rver, the local S3 server of the
// tests, in a child process. Baselines in the same rounds: curl -o of the same bytes, and the AWS
// SDK's own multipart Upload of the file from disk into the same server (that server's ceiling).
const s3Megabytes = Number(process.env.BENCH_S3_MB ?? 128)
const s3Size = Math.min(size, s3Megabytes * 1024 * 1024)
const s3Url = `${url}?bytes=${s3Size}`
const s3Expected = (() => {
  const hash = createHash("sha256")
  const fd = openSync(source, "r")
  const block = Buffer.alloc(8 * 1024 * 1024)
  for (let read = 0; read < s3Size; ) {
    const bytes = readSync(fd, block, 0, Math.min(block.length, s3Size - read), read)
    hash.update(block.subarray(0, bytes))
    read += bytes
  }
  closeSync(fd)
  return hash.digest("hex")
})()
const startS3rver = () => {
  const script = `
const S3rver = require("s3rver");
new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: process.argv[1], configureBuckets: [{ name: "bench" }] })
  .run().then(({ port }) => console.log(port));
`
  const child = spawn(process.execPath, ["-e", script, join(dir, "s3rver")], { stdio: ["ignore", "pipe", "inherit"] })
  return new Promise<{ child: typeof child; endpoint: string }>((resolve) =>
    child.stdout!.once("data", (data) => resolve({ child, endpoint: `http://127.0.0.1:${Number(String(data))}` }))
  )
}
const s3Options = (endpoint: string): S3Store.Options => ({
  bucket: "bench",
  endpoint,
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId: "S3RVER", secretAccessKey: Redacted.make("S3RVER") }
})
const sdkUpload = async (endpoint: string) => {
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
  })
  const start = now()
  await new Upload({
    client,
    params: {
      Bucket: "bench",
      Key: "sdk.mp4", // Through a PassThrough: the SDK would size a file stream by its path, not its range.
      Body: createReadStream(source, { end: s3Size - 1 }).pipe(new PassThrough())
    },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
    // s3rver cannot abort a multipart upload: keep a failure's own error.
    leavePartsOnError: true
  }).done()
  const millis = now() - start
  client.destroy()
  return mbPerSecond(s3Size, millis)
}
const reelkitS3 = (endpoint: string) =>
  Effect.gen(function* () {
    const store = yield* S3Store.make(s3Options(endpoint))
    const client = yield* HttpClient.HttpClient
    gc()
    const baseline = process.memoryUsage.rss()
    let peak = baseline
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
    }, 10)
    const start = now()
    const metadata = yield* store.put("bench/s3.mp4", HttpClientResponse.stream(client.get(s3Url)), {
      contentType: "video/mp4",
      sourceUrl: s3Url
    })
    const millis = now() - start
    clearInterval(sampler)
    peak = Math.max(peak, process.memoryUsage.rss())
    if (metadata.sha256 !== s3Expected) throw new Error("checksum mismatch for S3")
    yield* store.delete("bench/s3.mp4")
    return { throughput: mbPerSecond(metadata.bytes, millis), rssGrowth: (peak - baseline) / (1024 * 1024) }
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))
const curlOf = (target: string) => {
  const file = join(dir, "curl-s3.mp4")
  const start = now()
  execFileSync("curl", ["-s", "-o", file, target])
  const millis = now() - start
  const bytes = statSync(file).size
  rmSync(file)
  return mbPerSecond(bytes, millis)
}

try {
  // Loopback figures swing with the other load on the machine, so curl and each reelkit variant
  // take turns, round after round, and each reports its median and best round.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
  const variants = [
    { label: "node:http, fsync (default)", clientLayer: NodeHttpClient.layer, fsync: true },
    { label: "undici, fsync", clientLayer: NodeHttpClient.layerUndici, fsync: true },
    { label: "node:http, no fsync", clientLayer: NodeHttpClient.layer, fsync: false },
    { label: "undici, ResultStorage, fsync", clientLayer: NodeHttpClient.layerUndici, fsync: true, viaResults: true }
  ]
  const curlFsyncRates: Array<number> = []
  const curlRates: Array<number> = []
  const plainRates: Array<number> = []
  const rates = variants.map(() => [] as Array<number>)
  const growths = variants.map(() => [] as Array<number>)
  curl()
  for (const [index, variant] of variants.entries()) {
    await Effect.runPromise(reelkit(`warmup-${index}`, variant.clientLayer, variant.fsync, variant.viaResults))
  }
  for (let round = 0; round < rounds; round++) {
    curlRates.push(curl())
    curlFsyncRates.push(curlFsync())
    plainRates.push(await plainNode())
    for (const [index, variant] of variants.entries()) {
      const result = await Effect.runPromise(
        reelkit(`run-${index}`, variant.clientLayer, variant.fsync, variant.viaResults)
      )
      rates[index]!.push(result.throughput)
      growths[index]!.push(result.rssGrowth)
    }
  }
  const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const best = (values: ReadonlyArray<number>) => Math.max(...values)
  const figure = (value: number) => value.toFixed(0).padStart(5)
  console.log(`file: ${megabytes} MB from a node:http server (child process) on 127.0.0.1, ${rounds} rounds`)
  console.log(`${"".padEnd(38)}median MB/s  best MB/s  ratio to curl (median, best)  peak RSS growth`)
  console.log(`${"curl -s -o".padEnd(38)}${figure(median(curlRates))}       ${figure(best(curlRates))}`)
  console.log(
    `${"curl -s -o, then fsync".padEnd(38)}${figure(median(curlFsyncRates))}       ${figure(best(curlFsyncRates))}      ${(
      median(curlFsyncRates) / median(curlRates)
    ).toFixed(2)}, ${(best(curlFsyncRates) / best(curlRates)).toFixed(2)}`
  )
  console.log(
    `${"plain Node pipe + sha256 (no fsync)".padEnd(38)}${figure(median(plainRates))}       ${figure(best(plainRates))}      ${(
      median(plainRates) / median(curlRates)
    ).toFixed(2)}, ${(best(plainRates) / best(curlRates)).toFixed(2)}`
  )
  for (const [index, variant] of variants.entries()) {
    const values = rates[index]!
    console.log(
      `${`reelkit ${variant.label}`.padEnd(38)}${figure(median(values))}       ${figure(best(values))}      ${(
        median(values) / median(curlRates)
      ).toFixed(
        2
      )}, ${(best(values) / best(curlRates)).toFixed(2)}                  ${best(growths[index]!).toFixed(1)} MB`
    )
  }
  console.log("fsync: the store fsyncs the file before its atomic rename; curl does not. RSS growth: max over rounds.")

  if (process.env.BENCH_S3 !== "0") {
    const s3 = await startS3rver()
    try {
      const s3Rounds = Number(process.env.BENCH_S3_ROUNDS ?? 3)
      const curlS3: Array<number> = []
      const sdk: Array<number> = []
      const ours: Array<number> = []
      const oursGrowth: Array<number> = []
      await Effect.runPromise(reelkitS3(s3.endpoint)) // warm-up
      for (let round = 0; round < s3Rounds; round++) {
        curlS3.push(curlOf(s3Url))
        sdk.push(await sdkUpload(s3.endpoint))
        const result = await Effect.runPromise(reelkitS3(s3.endpoint))
        ours.push(result.throughput)
        oursGrowth.push(result.rssGrowth)
      }
      console.log(
        `\nS3: ${s3Size / (1024 * 1024)} MB into s3rver (child process, 8 MiB parts, 4 at once), ${s3Rounds} rounds`
      )
      console.log(`${"".padEnd(38)}median MB/s  best MB/s  ratio (median, best)`)
      console.log(`${"curl -s -o (download only)".padEnd(38)}${figure(median(curlS3))}       ${figure(best(curlS3))}`)
      console.log(`${"AWS SDK Upload of the file".padEnd(38)}${figure(median(sdk))}       ${figure(best(sdk))}`)
      console.log(
        `${"reelkit undici -> S3Store".padEnd(38)}${figure(median(ours))}       ${figure(best(ours))}      to curl ${(median(ours) / median(curlS3)).toFixed(2)}, ${(best(ours) / best(curlS3)).toFixed(2)}; to SDK ${(median(ours) / median(sdk)).toFixed(2)}, ${(best(ours) / best(sdk)).toFixed(2)}   RSS growth ${best(oursGrowth).toFixed(1)} MB`
      )
      console.log(
        "S3Store also copies the object server-side to its final key with its metadata; the SDK line does not."
      )
    } finally {
      s3.child.kill()
    }
  }
} finally {
  server.kill()
  rmSync(dir, { recursive: true, force: true })
}
