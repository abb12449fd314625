// NewestLines: the newest lines of a stream that may not end, up to a number of bytes of them (the newest line is
// always kept), and how many older ones were let go. The tail of a transcript and the lines held for a slow client
// are kept this way.

public struct NewestLines<Line: Sendable>: Sendable {
    private var lines: [Line] = []
    private var start = 0
    private let limit: Int
    private let size: @Sendable (Line) -> Int
    public private(set) var bytes = 0
    public private(set) var droppedLines = 0
    public private(set) var droppedBytes = 0

    /// Keeps at most `limit` bytes of lines, each weighing `size(line)`.
    public init(limit: Int, size: @escaping @Sendable (Line) -> Int) {
        self.limit = limit
        self.size = size
    }

    public var isEmpty: Bool { start == lines.count }

    /// The lines kept, oldest first.
    public var kept: ArraySlice<Line> { lines[start...] }

    public mutating func append(_ line: Line) {
        lines.append(line)
        bytes += size(line)
        while bytes > limit, lines.count - start > 1 {
            let dropped = size(lines[start])
            bytes -= dropped
            droppedBytes += dropped
            droppedLines += 1
            start += 1
        }
        // Dropped lines are let go of in bulk, not one removal (and copy) at a time.
        if start > 1024 && start * 2 > lines.count {
            lines.removeFirst(start)
            start = 0
        }
    }
}
