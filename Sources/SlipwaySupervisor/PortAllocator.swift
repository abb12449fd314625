// PortAllocator: finds a free loopback port for a web instance.
import SlipwayBasics

public enum PortError: UserFacingError {
    case noFreePort(range: Range<Int>)

    public var description: String {
        switch self {
        case .noFreePort(let range):
            "no free port on 127.0.0.1 between \(range.lowerBound) and \(range.upperBound - 1) for a new instance; "
                + "stop unused processes"
        }
    }
}

enum PortAllocator {
    static func freePort() throws(PortError) -> Int {
        guard let port = LoopbackPorts.instances.take() else { throw .noFreePort(range: LoopbackPorts.instances.range) }
        return port
    }
}
