// Helpers shared by the test targets: temporary directories, fixture apps, free ports, running
// commands, and a small keep-alive HTTP client for talking to the proxy on loopback.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

/// The package root, found from this file's path.
public let packageRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// A fixture app's folder under Tests/Fixtures/apps.
public func fixture(_ name: String) -> String { packageRoot + "/Tests/Fixtures/apps/" + name }

/// A fresh directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "test") throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "slipway-\(label)-\(UUID().uuidString.prefix(8))"
            ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Ports for the daemons and servers tests start: below the instances' ports, and so, like them, out of reach of
/// the outgoing connections the tests make by the thousand.
private let testPorts = LoopbackPorts(
    range: (LoopbackPorts.instances.range.lowerBound - 6000)..<LoopbackPorts.instances.range.lowerBound
)

/// A loopback port nothing holds right now, and no other test will be given.
public func freePort() -> Int {
    guard let port = testPorts.take() else { preconditionFailure("no free loopback port in \(testPorts.range)") }
    return port
}

/// The environment tests run tools with: ours, plus a git identity.
public var toolEnvironment: [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_AUTHOR_NAME"] = environment["GIT_AUTHOR_NAME"] ?? "Slipway Tests"
    environment["GIT_AUTHOR_EMAIL"] = environment["GIT_AUTHOR_EMAIL"] ?? "tests@slipway.invalid"
    environment["GIT_COMMITTER_NAME"] = environment["GIT_COMMITTER_NAME"] ?? "Slipway Tests"
    environment["GIT_COMMITTER_EMAIL"] = environment["GIT_COMMITTER_EMAIL"] ?? "tests@slipway.invalid"
    // Repositories in test daemons' data directories belong to their unprivileged user (see ServiceUser).
    environment["GIT_CONFIG_COUNT"] = "1"
    environment["GIT_CONFIG_KEY_0"] = "safe.directory"
    environment["GIT_CONFIG_VALUE_0"] = "*"
    return environment
}

/// Runs a program to its end and returns its status and merged output.
@discardableResult
public func run(
    _ executable: String,
    _ arguments: [String],
    in directory: String? = nil,
    environment: [String: String]? = nil
)
    async throws -> (status: ExitStatus, output: String)
{
    try await run(
        Command(executable, arguments, environment: environment ?? toolEnvironment, workingDirectory: directory)
    )
}

extension Command {
    /// The same command, ended by `timeout` after `seconds`: for a test that must not wait for ever on a bug.
    public func bounded(_ seconds: Int) -> Command {
        Command(
            "/usr/bin/timeout",
            ["\(seconds)", executable] + arguments,
            environment: environment,
            workingDirectory: workingDirectory
        )
    }
}

/// Runs `command` to its end and returns its status and merged output.
@discardableResult
public func run(_ command: Command) async throws -> (status: ExitStatus, output: String) {
    // Tests read all of a command's output: 64 MiB of each end is all of it.
    try await DirectLauncher().output(of: command, for: .platform, keptBytesEachEnd: 64 << 20)
}

/// Copies fixtures into `directory` (replacing what was there but `.git`; a later fixture's files
/// replace an earlier one's) and commits them.
public func commitFixture(_ names: String..., into directory: String, message: String) async throws {
    let files = FileManager.default
    if !files.fileExists(atPath: directory + "/.git") {
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await run("git", ["init", "--quiet", "--initial-branch=main"], in: directory)
    }
    for item in try files.contentsOfDirectory(atPath: directory) where item != ".git" {
        try files.removeItem(atPath: directory + "/" + item)
    }
    for name in names {
        for item in try files.contentsOfDirectory(atPath: fixture(name)) {
            try? files.removeItem(atPath: directory + "/" + item)
            try files.copyItem(atPath: fixture(name) + "/" + item, toPath: directory + "/" + item)
        }
    }
    try await run("git", ["add", "--all"], in: directory)
    try await run("git", ["commit", "--quiet", "--allow-empty", "-m", message], in: directory)
}

/// One HTTP response as the tests look at it.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: String
}

/// A keep-alive HTTP/1.1 client over one TCP connection to 127.0.0.1, reconnecting when the
/// server closed it. Blocking, for simplicity; tests call it from their own tasks.
public final class HTTPConnection {
    private let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    public init(port: Int) { self.port = port }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func get(_ path: String, host: String, headers: [String: String] = [:]) throws -> HTTPAnswer {
        let request = Self.request(path, host: host, headers: headers)
        if fd < 0 { try connect() }
        do {
            try send(request)
            return try readResponse()
        } catch HTTPClientError.closed where buffer.isEmpty {
            // A keep-alive connection the server closed between requests: try once on a new one.
            try connect()
            try send(request)
            return try readResponse()
        }
    }

    /// Sends a GET on a new connection now and reads its answer on a thread of its own. For a request that
    /// must have reached the server before the test goes on: a blocking call in a task may wait for a thread of
    /// the cooperative pool to start at all, which on a loaded machine took long enough to miss a deploy.
    public static func startGet(
        port: Int,
        _ path: String,
        host: String,
        headers: [String: String] = [:]
    ) async throws -> Task<HTTPAnswer, any Error> {
        let (sent, sending) = AsyncStream<Result<Void, any Error>>.makeStream()
        let answer = Task {
            try await withCheckedThrowingContinuation { (answered: CheckedContinuation<HTTPAnswer, any Error>) in
                Thread {
                    let connection = HTTPConnection(port: port)
                    do {
                        try connection.connect()
                        try connection.send(request(path, host: host, headers: headers))
                    } catch {
                        sending.yield(.failure(error))
                        answered.resume(throwing: error)
                        return
                    }
                    sending.yield(.success(()))
                    answered.resume(with: Result { try connection.readResponse() })
                }.start()
            }
        }
        for await result in sent {
            try result.get()
            break
        }
        return answer
    }

    private static func request(_ path: String, host: String, headers: [String: String]) -> String {
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        return request + "\r\n"
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func connect() throws {
        close()
        buffer = []
        fd = try connectToLoopback(port: port, receiveTimeout: 60)
    }

    private func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw HTTPClientError.closed }
            sent += count
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else {
            close()
            throw HTTPClientError.closed
        }
        buffer.append(contentsOf: chunk[0..<count])
    }

    private func readLine() throws -> String {
        while true {
            if let index = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<index], as: UTF8.self).trimmingCharacters(
                    in: .init(charactersIn: "\r")
                )
                buffer.removeSubrange(...index)
                return line
            }
            try fill()
        }
    }

    private func read(count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let bytes = Array(buffer[..<count])
        buffer.removeSubrange(..<count)
        return bytes
    }

    private func readResponse() throws -> HTTPAnswer {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw HTTPClientError.malformed(statusLine) }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        var body: [UInt8] = []
        if status == 304 || status == 204 {
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                let size = Int(try readLine().split(separator: ";")[0], radix: 16) ?? 0
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                body += try read(count: size)
                _ = try readLine()
            }
        } else if let length = headers["content-length"].flatMap(Int.init) {
            body = try read(count: length)
        } else {
            while (try? fill()) != nil {}
            body = buffer
            buffer = []
        }
        if headers["connection"]?.lowercased() == "close" { close() }
        return HTTPAnswer(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }
}

/// A blocking TCP connection to 127.0.0.1:`port` whose reads give up after `receiveTimeout` seconds.
func connectToLoopback(port: Int, receiveTimeout: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = LoopbackPorts.withAddress(port: port) { connect(fd, $0, $1) == 0 }
    guard connected else {
        close(fd)
        throw HTTPClientError.refused
    }
    return fd
}

public enum HTTPClientError: Error {
    case refused, closed, timedOut
    case malformed(String)
}

/// Polls `condition` until it holds or `timeout` passes, and returns whether it held: how a test waits for an
/// event it cannot await (a file appears, a process ends, a loop meets a new release) instead of sleeping.
/// The timeout is only a bound on a failing test, never a speed the test asserts.
public func eventually(
    timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
