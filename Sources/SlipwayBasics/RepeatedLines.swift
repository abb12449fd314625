// RepeatedLines: output that says the same thing again and again (an app's traceback at every health check) told
// once, with how often it came again.
public enum RepeatedLines {
    /// `… the same 3 lines 117 more times`, `… the same line once more`.
    public static func summary(of count: Int, lines: Int) -> String {
        let what = lines == 1 ? "line" : "\(lines) lines"
        return "… the same \(what) " + (count == 1 ? "once more" : "\(count) more times")
    }

    /// `lines` with each run of a block repeated back to back kept once and followed by its summary; the shortest
    /// repeating block wins at each place.
    public static func collapse(_ lines: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < lines.count {
            var collapsed = false
            for length in 1...max(1, (lines.count - index) / 2) where index + 2 * length <= lines.count {
                let block = lines[index..<index + length]
                var repeats = 0
                while index + (repeats + 2) * length <= lines.count,
                    lines[index + (repeats + 1) * length..<index + (repeats + 2) * length].elementsEqual(block)
                {
                    repeats += 1
                }
                guard repeats > 0 else { continue }
                result += block + [summary(of: repeats, lines: length)]
                index += (repeats + 1) * length
                collapsed = true
                break
            }
            if !collapsed {
                result.append(lines[index])
                index += 1
            }
        }
        return result
    }
}
