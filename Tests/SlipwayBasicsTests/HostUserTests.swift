// Host users are looked up from many threads at once (test daemons, the daemon's own tasks): each lookup gets its
// own answer, never another thread's.
import Foundation
import SlipwayBasics
import Testing

@Suite struct HostUserTests {
    @Test func lookupsAtOnceFromManyThreadsEachGetTheirOwnAnswer() async {
        #expect(HostUser.named("root")?.uid == 0 && HostUser.withID(0)?.name == "root")
        #expect(HostUser.named("nobody")?.uid == 65534 && HostUser.withID(65534)?.name == "nobody")
        #expect(HostUser.named("slipway-no-such-user") == nil && HostUser.withID(4_000_000_000) == nil)
        let wrong = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for round in 0..<2000 {
                        let (name, uid): (String, uid_t) = (task + round) % 2 == 0 ? ("root", 0) : ("nobody", 65534)
                        if HostUser.named(name)?.uid != uid { wrong += 1 }
                        if HostUser.withID(uid)?.name != name { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }
}
