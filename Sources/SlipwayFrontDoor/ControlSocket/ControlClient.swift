// ControlClient: the CLI's side of the control socket. Sends one request, prints the replies as
// they arrive, and returns the exit status the daemon gave. For `slipway ssh-command` it also
// hands over stdin when asked and becomes the program the daemon names (git-receive-pack).
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public enum ControlClientError: UserFacingError {
    case daemonNotRunning(socket: String)
    case permissionDenied(socket: String)
    case connectionLost
    case inputTooLong
    case couldNotExec(String, errno: Int32)

    public var description: String {
        switch self {
        case .daemonNotRunning(let socket):
            "the Slipway daemon is not running (nothing answers at \(socket)); start it with `slipway serve`"
                + " (or pass --data / SLIPWAY_DATA if it uses another data directory)"
        case .permissionDenied(let socket):
            "permission denied at \(socket): run slipway as the user that runs `slipway serve`"
        case .connectionLost: "the Slipway daemon closed the connection before answering; check its log"
        case .inputTooLong:
            "the input is longer than \(maximumCommandInput / 1024) KiB; give only what the command needs"
        case .couldNotExec(let program, let code):
            "could not run \(program): \(String(cString: strerror(code))); install it on the host (apt install git)"
        }
    }
}

public enum ControlClient {
    /// Sends `request` to the daemon at `socketPath`, writing its output to stdout (or `standardOutput`) and stderr;
    /// a rejection of a push goes to `onRejection`.
    public static func send(
        _ request: ControlRequest,
        socketPath: String,
        standardOutput: FileHandle = .standardOutput,
        onRejection: (String) -> Void = { _ in }
    ) throws -> Int32 {
        let fd = try connect(to: socketPath)
        defer { close(fd) }
        try write(Wire.encode(request), to: fd)
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw ControlClientError.connectionLost }
            pending.append(contentsOf: buffer[0..<count])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let reply = try Wire.decode(ControlReply.self, from: pending[..<newline])
                pending.removeSubrange(...newline)
                switch reply {
                case .stdout(let text): standardOutput.write(Data(text.utf8))
                case .rejection(let reason): onRejection(reason)
                case .stderr(let text): FileHandle.standardError.write(Data(text.utf8))
                case .exit(let status): return status
                case .sendInput: try write(Wire.encode(ControlInput(data: try readStandardInput())), to: fd)
                case .exec(let executable, let arguments, let environment, let directory):
                    close(fd)
                    try exec(Command(executable, arguments, environment: environment, workingDirectory: directory))
                }
            }
        }
    }

    /// Stdin to its end, refusing more than a command may take.
    public static func readStandardInput() throws -> Data {
        var data = Data()
        while let chunk = try FileHandle.standardInput.read(upToCount: 16 * 1024), !chunk.isEmpty {
            data.append(chunk)
            guard data.count <= maximumCommandInput else { throw ControlClientError.inputTooLong }
        }
        return data
    }

    /// Replaces this process with `command`, found on its PATH; returns only by throwing.
    private static func exec(_ command: Command) throws -> Never {
        let path = command.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates =
            command.executable.contains("/")
            ? [command.executable] : path.split(separator: ":").map { "\($0)/\(command.executable)" }
        let argv = ([command.executable] + command.arguments).map { strdup($0) } + [nil]
        let envp = command.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        if let directory = command.workingDirectory, chdir(directory) != 0 {
            throw ControlClientError.couldNotExec(command.executable, errno: errno)
        }
        for candidate in candidates where access(candidate, X_OK) == 0 {
            execve(candidate, argv, envp)
        }
        throw ControlClientError.couldNotExec(command.executable, errno: errno == 0 ? ENOENT : errno)
    }

    private static func write(_ data: Data, to fd: Int32) throws {
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count else { throw ControlClientError.connectionLost }
    }

    private static func connect(to path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError.daemonNotRunning(socket: path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw ControlClientError.daemonNotRunning(socket: path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard connected else {
            let code = errno
            close(fd)
            // The socket, or the data directory holding it, is another user's (both are theirs alone).
            if code == EACCES || code == EPERM { throw ControlClientError.permissionDenied(socket: path) }
            throw ControlClientError.daemonNotRunning(socket: path)
        }
        return fd
    }
}
