// The ledger contract against the reference implementation, the in-memory ledger: the contract's
// own expectations must hold for the behaviour every adapter copies.
import * as EffectVitest from "@effect/vitest"
import { TaskLedger } from "@reelkit/core"
import * as TaskLedgerContract from "../src/TaskLedgerContract.js"

TaskLedgerContract.suite("memory", TaskLedger.layerMemory, EffectVitest)
