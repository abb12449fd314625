// CPUs: the affinity list read the way the kernel writes it, and a real process pinned with taskset.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayBasics

@Suite struct CPUsTests {
    @Test func countsTheCPUsOfAnAffinityList() {
        #expect(CPUs.count(list: "\t0-1") == 2)
        #expect(CPUs.count(list: "0-3,8,10-11") == 7)
        #expect(CPUs.count(list: "5") == 1)
        #expect(CPUs.count(list: "3-1") == nil)
        #expect(CPUs.count(list: "") == nil)
        #expect(CPUs.available >= 1)
    }

    @Test func aProcessPinnedToOneCPUSeesOne() async throws {
        // The kernel's own answer for a pinned child, read through the same status line.
        let pinned = try await run("taskset", ["-c", "0", "grep", "Cpus_allowed_list", "/proc/self/status"])
        let list = try #require(pinned.output.split(separator: ":").last)
        #expect(CPUs.count(list: list) == 1)
    }
}
