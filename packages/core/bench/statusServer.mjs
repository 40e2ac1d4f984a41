// A loopback status server in its own process (so its CPU is not counted against the client):
// answers apixo-shaped status requests; task `t<n>` is processing until its 5th request, then succeeds.
import { createServer } from "node:http"

const polls = new Map()
const server = createServer((request, response) => {
  const taskId = new URL(request.url, "http://x").searchParams.get("taskId") ?? ""
  const count = (polls.get(taskId) ?? 0) + 1
  polls.set(taskId, count)
  const data =
    count >= 5
      ? { taskId, state: "success", resultJson: JSON.stringify({ resultUrls: [`https://cdn.example/${taskId}.mp4`] }) }
      : { taskId, state: "processing" }
  const body = JSON.stringify({ code: 200, message: "success", data })
  response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
})
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`))
process.on("SIGTERM", () => server.close(() => process.exit(0)))
