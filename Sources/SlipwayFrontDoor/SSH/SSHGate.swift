// The seam between the SSH transport (SSHServer: keys, channels, pipes, exit statuses) and what
// Slipway allows over it (who a key is, what a command line may run). The transport knows nothing
// of apps or roles; the gate knows nothing of SSH packets.
import SlipwayBasics

/// What an authenticated `exec` request turns into.
public enum SSHPlan: Sendable {
    /// A program wired to the session: its stdin, stdout and stderr are the session's, byte for
    /// byte, and its exit status is the session's (`git-receive-pack`, `git-upload-pack`).
    case program(Command)
    /// A command run inside the daemon. `input` is the session's stdin read to its end when
    /// `readsInput` (for `keys:add`), else empty. Returns the exit status.
    case inProcess(
        readsInput: Bool,
        run: @Sendable (_ input: [UInt8], _ output: SessionOutput) async -> Int32
    )
    /// Refused: `message` (one line) on stderr, then `status`.
    case refuse(message: String, status: Int32)
}

/// Writes to the session a command runs for: an SSH channel, or a control-socket client. Each
/// write returns once the bytes are handed on, so everything written before `run` returns goes
/// out before the exit status.
public struct SessionOutput: Sendable {
    public enum Stream: Sendable { case standardOutput, standardError }

    private let sink: @Sendable (_ bytes: [UInt8], _ stream: Stream) async -> Void

    public init(sink: @escaping @Sendable (_ bytes: [UInt8], _ stream: Stream) async -> Void) {
        self.sink = sink
    }

    public func write(_ text: String, to stream: Stream) async {
        await sink(Array(text.utf8), stream)
    }
}

/// Decides who may log in and what each `exec` request runs.
public protocol SSHGate: Sendable {
    /// The name of the stored key that `publicKey` (an OpenSSH public-key line without comment,
    /// `ssh-ed25519 AAAA…`) belongs to, or nil to refuse the login. Called only after the
    /// client proved it holds the private key.
    func keyName(for publicKey: String, user: String) async -> String?

    /// What `commandLine` (the raw `exec` string) runs for the key `keyName`. `environment` holds
    /// only the variables the client sent that git needs (`GIT_PROTOCOL`).
    func plan(for commandLine: String, keyName: String, environment: [String: String]) async -> SSHPlan
}
