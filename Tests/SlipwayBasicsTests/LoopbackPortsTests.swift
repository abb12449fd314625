// LoopbackPorts: instance ports stay out of the kernel's ephemeral range, come in turn, and skip a port
// something holds, checked against real sockets.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

@Suite struct LoopbackPortsTests {
    @Test func instancePortsAreBelowTheEphemeralRangeAndNeverTheSameTwiceInARow() throws {
        let first = try #require(LoopbackPorts.instances.take())
        let second = try #require(LoopbackPorts.instances.take())
        #expect(first != second)
        for port in [first, second] {
            #expect(port < LoopbackPorts.ephemeral.lowerBound)
            #expect(LoopbackPorts.instances.range.contains(port))
        }
    }

    @Test func aPortSomethingListensOnIsSkipped() throws {
        let held = freePort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let listening = LoopbackPorts.withAddress(port: held) {
            bind(listener, $0, $1) == 0 && listen(listener, 1) == 0
        }
        try #require(listening)

        #expect(LoopbackPorts(range: held..<held + 1).take() == nil)
        let pair = LoopbackPorts(range: held..<held + 2)
        for _ in 0..<3 {
            #expect(pair.take() == held + 1, "the held port is skipped, also after the range wraps")
        }
    }
}
