// Stops the CLI when the package manager that started it is gone. `pnpm reelkit serve` runs
// pnpm -> sh -c -> node; a SIGTERM to pnpm (or to the npx above it) ends that process only, and
// the server would go on running with no one to stop it. Ctrl-C in a terminal reaches the whole
// process group and needs none of this.
//
// On Linux, the wrappers above this process (`sh -c ...` and the pnpm or npm processes) are read
// from /proc at start; every 2 seconds they are checked, and once one has gone this process sends
// itself SIGTERM, which the CLI handles like Ctrl-C. Elsewhere, or when started directly with
// node, nothing is watched.
import * as Fs from "node:fs"

const parentOf = (pid) => {
  try {
    // The command name in parentheses may hold spaces: the fields after its closing one are fixed.
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

const commandOf = (pid) => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\u0000")
      .filter((part) => part !== "")
  } catch {
    return []
  }
}

// A shell running one command, or a pnpm/npm/npx process: what sits between a user and this CLI.
const isWrapper = (command) =>
  (/(^|\/)(ba|da)?sh$/.test(command[0] ?? "") && command[1] === "-c") ||
  command.some((part) => /(^|\/)(pnpm|npm|npx)(\.c?js)?$/.test(part) || /^(pnpm|npm)@/.test(part)) ||
  command[0] === "npm exec" ||
  /^npm (exec|run)/.test(command[0] ?? "")

/** The pids of the package-manager wrappers above this process, nearest first. */
export const wrappers = () => {
  const found = []
  let pid = process.ppid
  while (pid !== undefined && pid > 1 && isWrapper(commandOf(pid))) {
    found.push(pid)
    pid = parentOf(pid)
  }
  return found
}

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    // A pid handed to another process would have another parent: the chain must hold too.
    return true
  } catch {
    return false
  }
}

/** Watches the wrappers; when one exits, stops this process as SIGTERM would. */
export const stopWithLauncher = () => {
  if (process.platform !== "linux") return
  const chain = wrappers()
  if (chain.length === 0) return
  const timer = setInterval(() => {
    if (chain.every(alive)) return
    clearInterval(timer)
    process.stderr.write("reelkit: the package manager that started this command has exited; stopping.\n")
    process.kill(process.pid, "SIGTERM")
  }, 2000)
  timer.unref()
}
