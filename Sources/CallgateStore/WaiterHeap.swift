import CallgateCore

/// Callbacks waiting for commit positions, as a binary min-heap on the position: registering is
/// O(log n), and after a commit the writer pops exactly the settled ones from the top.
struct WaiterHeap {
    typealias Callback = @Sendable (CallgateError?) -> Void

    private var items: [(position: Int, callback: Callback)] = []

    var isEmpty: Bool { self.items.isEmpty }

    mutating func insert(_ position: Int, _ callback: @escaping Callback) {
        self.items.append((position, callback))
        var child = self.items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.items[child].position < self.items[parent].position else { break }
            self.items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns every callback whose position is below `limit`.
    mutating func popAll(below limit: Int, into ready: inout [Callback]) {
        while let top = self.items.first, top.position < limit {
            ready.append(top.callback)
            let last = self.items.removeLast()
            guard !self.items.isEmpty else { break }
            self.items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < self.items.count && self.items[left].position < self.items[smallest].position {
                    smallest = left
                }
                if right < self.items.count && self.items[right].position < self.items[smallest].position {
                    smallest = right
                }
                if smallest == parent { break }
                self.items.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }

    /// Removes and returns every callback.
    mutating func popAll(into ready: inout [Callback]) {
        ready.append(contentsOf: self.items.map(\.callback))
        self.items.removeAll()
    }
}
