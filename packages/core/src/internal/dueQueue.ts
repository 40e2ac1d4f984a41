// A min-heap of items by due time. Rescheduling pushes a new node; stale nodes are skipped on pop
// by comparing a per-item generation, which keeps every operation O(log n) without a decrease-key.

interface Node<A> {
  readonly dueAt: number
  readonly item: A
  readonly generation: number
}

export interface Scheduled {
  /** Bumped each time the item is (re)scheduled or removed; older heap nodes are then stale. */
  generation: number
}

export class DueQueue<A extends Scheduled> {
  private readonly nodes: Array<Node<A>> = []

  get size(): number {
    return this.nodes.length
  }

  /** Schedules `item` at `dueAt`, replacing any earlier schedule of it. */
  schedule(item: A, dueAt: number): void {
    item.generation += 1
    this.nodes.push({ dueAt, item, generation: item.generation })
    this.siftUp(this.nodes.length - 1)
  }

  /** Forgets `item`: its pending nodes become stale. */
  unschedule(item: A): void {
    item.generation += 1
  }

  /** The earliest live node, dropping stale ones on the way. */
  peek(): { readonly dueAt: number; readonly item: A } | undefined {
    while (this.nodes.length > 0) {
      const top = this.nodes[0]!
      if (top.generation === top.item.generation) return top
      this.popTop()
    }
    return undefined
  }

  /** Removes and returns the earliest live node. */
  pop(): { readonly dueAt: number; readonly item: A } | undefined {
    const top = this.peek()
    if (top !== undefined) {
      this.popTop()
      top.item.generation += 1
    }
    return top
  }

  private popTop(): void {
    const last = this.nodes.pop()!
    if (this.nodes.length > 0) {
      this.nodes[0] = last
      this.siftDown(0)
    }
  }

  private siftUp(index: number): void {
    const nodes = this.nodes
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (nodes[parent]!.dueAt <= nodes[index]!.dueAt) return
      ;[nodes[parent], nodes[index]] = [nodes[index]!, nodes[parent]!]
      index = parent
    }
  }

  private siftDown(index: number): void {
    const nodes = this.nodes
    for (;;) {
      const left = 2 * index + 1
      const right = left + 1
      let smallest = index
      if (left < nodes.length && nodes[left]!.dueAt < nodes[smallest]!.dueAt) smallest = left
      if (right < nodes.length && nodes[right]!.dueAt < nodes[smallest]!.dueAt) smallest = right
      if (smallest === index) return
      ;[nodes[smallest], nodes[index]] = [nodes[index]!, nodes[smallest]!]
      index = smallest
    }
  }
}
