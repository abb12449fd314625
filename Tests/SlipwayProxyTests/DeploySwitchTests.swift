import SlipwayTestSupport
// Specifications for the atomic switch between releases and the drain of the release it replaced.
import Synchronization
import Testing

@testable import SlipwayProxy

@Suite("Switching releases and draining", .timeLimit(.minutes(1)))
struct DeploySwitchTests {
    @Test("after a switch, the next request on the same keep-alive connection reaches the new release")
    func switchOnKeepAliveConnection() async throws {
        try await ProxyHarness.with { proxy in
            let blue = try await proxy.backend("blue")
            let green = try await proxy.backend("green")
            proxy.deploy("web", host: "web.test", release: 1, to: [blue])
            let client = try await proxy.client()
            #expect(try await client.get("/", host: "web.test").body == "blue")

            let old = proxy.deploy("web", host: "web.test", release: 2, to: [green])
            let after = try await client.get("/", host: "web.test")
            #expect(after.body == "green")
            #expect(after.header("Slipway-Release") == "v2")
            #expect(old?.release.release == 1)
            #expect(
                await old?.drain(timeout: .seconds(1)) == DrainReport(finished: 0, cancelled: 0, webSocketsClosed: 0)
            )
        }
    }

    @Test("drain waits for a slow request on the old release, which finishes with 200")
    func drainWaitsForInFlight() async throws {
        try await ProxyHarness.with { proxy in
            let blue = try await proxy.backend("blue")
            let green = try await proxy.backend("green")
            proxy.deploy("web", host: "web.test", release: 1, to: [blue])
            let old = try #require(proxy.router.liveSet(for: "web"))
            let client = try await proxy.client()
            let slow = Task { try await client.get("/slow?ms=600", host: "web.test") }
            #expect(await eventually { old.inFlight == 1 })

            proxy.deploy("web", host: "web.test", release: 2, to: [green])
            let report = await old.drain(timeout: .seconds(10))
            #expect(report == DrainReport(finished: 1, cancelled: 0, webSocketsClosed: 0))
            #expect(old.inFlight == 0)
            let response = try await slow.value
            #expect(response.status == 200)
            #expect(response.body == "blue")
            // The same connection now reaches the new release.
            #expect(try await client.get("/", host: "web.test").body == "green")
        }
    }

    @Test("drain answers 504 to a request still running at its deadline")
    func drainCutsOffAtDeadline() async throws {
        try await ProxyHarness.with { proxy in
            let blue = try await proxy.backend("blue")
            let green = try await proxy.backend("green")
            proxy.deploy("web", host: "web.test", release: 1, to: [blue])
            let old = try #require(proxy.router.liveSet(for: "web"))
            let client = try await proxy.client()
            let stuck = Task { try await client.get("/slow?ms=5000", host: "web.test") }
            #expect(await eventually { old.inFlight == 1 })

            proxy.deploy("web", host: "web.test", release: 2, to: [green])
            let started = ContinuousClock.now
            let report = await old.drain(timeout: .milliseconds(300))
            // Well before the stuck request's own 5 s: the deadline, not the request, ended the drain.
            #expect(ContinuousClock.now - started < .seconds(4))
            #expect(report == DrainReport(finished: 0, cancelled: 1, webSocketsClosed: 0))
            let response = try await stuck.value
            #expect(response.status == 504)
            #expect(response.body == "web did not answer before its old release was retired.\n")
            #expect(try await client.get("/", host: "web.test").body == "green")
        }
    }

    @Test("drain of an idle set returns at once")
    func drainIdleSet() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("blue")])
            let old = try #require(
                proxy.deploy("web", host: "web.test", release: 2, to: [try await proxy.backend("green")])
            )
            let started = ContinuousClock.now
            #expect(
                await old.drain(timeout: .seconds(30)) == DrainReport(finished: 0, cancelled: 0, webSocketsClosed: 0)
            )
            // Nowhere near its 30 s timeout: nothing was in flight.
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    @Test("no request fails across ten switches under load on two keep-alive connections")
    func noFailuresAcrossSwitches() async throws {
        try await ProxyHarness.with { proxy in
            var releases = [try await proxy.backend("r0")]
            proxy.deploy("web", host: "web.test", release: 0, to: [releases[0]])
            let clients = [try await proxy.client(), try await proxy.client()]
            let tally = LoadTally()
            let perClient = 150

            let load = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in clients {
                        group.addTask {
                            for n in 0..<perClient {
                                // Every fourth request is slow, so switches find requests in flight.
                                let path = n % 4 == 0 ? "/slow?ms=15" : "/"
                                let response = try await client.get(path, host: "web.test")
                                tally.record(response)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }

            var reports: [DrainReport] = []
            for release in 1...10 {
                // Spread the switches over the run: one every 25 answered requests.
                _ = await eventually(timeout: .seconds(20)) { tally.completed >= release * 25 }
                let next = try await proxy.backend("r\(release)")
                let old = try #require(proxy.deploy("web", host: "web.test", release: release, to: [next]))
                reports.append(await old.drain(timeout: .seconds(5)))
                // Retire the old instance, as the deployer does after the drain.
                await releases[release - 1].stop()
                releases.append(next)
            }
            try await load.value

            #expect(tally.failures == [])
            #expect(tally.completed == 2 * perClient)
            #expect(reports.allSatisfy { $0.cancelled == 0 })
            #expect(try await clients[0].get("/", host: "web.test").body == "r10")
        }
    }
}

/// Answers seen by the load loop, from both clients at once.
final class LoadTally: Sendable {
    private let state = Mutex((completed: 0, failures: [String]()))

    func record(_ response: TestResponse) {
        state.withLock { state in
            state.completed += 1
            if response.status != 200 || !response.body.hasPrefix("r") {
                state.failures.append("\(response.status) \(response.body)")
            }
        }
    }

    var completed: Int { state.withLock { $0.completed } }
    var failures: [String] { state.withLock { $0.failures } }
}
