// The control socket's wire format: one JSON request line from the client, then JSON reply
// lines (output as it happens, then the exit status) from the daemon.
import Foundation

public enum ControlRequest: Codable, Sendable, Equatable {
    /// An admin command line, exactly as typed after `slipway`.
    case command([String])
    /// From the post-receive hook: `ref` of `app` now points at `revision`.
    case push(app: String, ref: String, revision: String)
}

public enum ControlReply: Codable, Sendable, Equatable {
    case stdout(String)
    case stderr(String)
    case exit(Int32)
}

enum Wire {
    static func encode<T: Encodable>(_ value: T) -> Data {
        var data = (try? JSONEncoder().encode(value)) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    static func decode<T: Decodable>(_ type: T.Type, from line: some Sequence<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(line))
    }
}
