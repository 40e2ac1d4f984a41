// The baseline: a bare node:http handler that reads the body and answers 200 with a small JSON.
import { createServer } from "node:http"

const server = createServer((request, response) => {
  const chunks = []
  request.on("data", (chunk) => chunks.push(chunk))
  request.on("end", () => {
    JSON.parse(Buffer.concat(chunks).toString("utf8"))
    const body = '{"outcome":"accepted"}'
    response.writeHead(200, { "content-type": "application/json", "content-length": body.length })
    response.end(body)
  })
})
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address()
  const body = JSON.stringify({ code: 200, message: "success", data: { taskId: "task_1", state: "success" } })
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/callbacks/tk_bench/token`, body })}\n`)
})
process.on("SIGTERM", () => process.exit(0))
