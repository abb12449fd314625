// A repeated traceback is told once, with how often it came again.
import SlipwayBasics
import Testing

struct RepeatedLinesTests {
    @Test func aBlockRepeatedBackToBackIsKeptOnceWithItsCount() {
        let traceback = ["Traceback:", "  line 12", "Error: down"]
        #expect(
            RepeatedLines.collapse(["starting"] + traceback + traceback + traceback + ["bye"])
                == ["starting"] + traceback + ["… the same 3 lines 2 more times", "bye"]
        )
        #expect(RepeatedLines.collapse(["a", "a", "b"]) == ["a", "… the same line once more", "b"])
        #expect(RepeatedLines.collapse(["a", "b", "a", "c"]) == ["a", "b", "a", "c"])
        #expect(RepeatedLines.collapse([]) == [])
    }
}
