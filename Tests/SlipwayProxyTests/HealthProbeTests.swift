// Specifications for the deployer's health check GET and Dokku's rule for passing it.
import Testing

@testable import SlipwayProxy

@Suite("Health probes", .timeLimit(.minutes(1)))
struct HealthProbeTests {
    private func probe(_ upstream: Upstream, _ path: String, timeout: Duration) async -> ProbeResult {
        await HealthProbe.get(upstream, path: path, host: "web.test", timeout: timeout, group: TestLoops.group)
    }

    @Test("a 200 passes, with or without a content check that matches")
    func okPasses() async throws {
        let backend = try await TestBackend.start(name: "web")
        let result = await probe(backend.upstream, "/health", timeout: .seconds(2))
        await backend.stop()
        #expect(result.status == 200)
        #expect(result.body == "ok web")
        #expect(result.passes(content: nil))
        #expect(result.passes(content: "ok"))
        #expect(result.description == "GET /health answered 200")
    }

    @Test("a 500 fails")
    func serverErrorFails() async throws {
        let backend = try await TestBackend.start(name: "web")
        let result = await probe(backend.upstream, "/status?code=500", timeout: .seconds(2))
        await backend.stop()
        #expect(result.status == 500)
        #expect(!result.passes(content: nil))
        #expect(result.description == "GET /status?code=500 answered 500")
    }

    @Test("a body without the expected content fails")
    func contentMismatchFails() async throws {
        let backend = try await TestBackend.start(name: "web")
        let result = await probe(backend.upstream, "/health", timeout: .seconds(2))
        await backend.stop()
        #expect(!result.passes(content: "Welcome"))
    }

    @Test("a refused port reports the failure")
    func refusedPort() async throws {
        let refusing = try RefusingPort()
        let result = await probe(refusing.upstream, "/health", timeout: .seconds(2))
        withExtendedLifetime(refusing) {}
        #expect(result.status == nil)
        #expect(result.failure == "connection refused")
        #expect(result.isRefused)
        #expect(!result.passes(content: nil))
        #expect(result.description == "GET /health: connection refused")
    }

    @Test("an instance that never answers times out within the timeout")
    func neverAnswers() async throws {
        let backend = try await TestBackend.start(name: "web")
        let started = ContinuousClock.now
        let result = await probe(backend.upstream, "/hang", timeout: .milliseconds(300))
        let elapsed = ContinuousClock.now - started
        await backend.stop()
        #expect(result.failure == "timed out after 300ms")
        #expect(!result.passes(content: nil))
        #expect(elapsed >= .milliseconds(250), "the probe waited for its timeout")
    }
}
