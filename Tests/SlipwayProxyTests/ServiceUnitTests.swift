// The systemd unit the README installs, checked against what the code needs: an unprivileged user, descriptors
// for every connection the proxy admits, the umask the data directory's modes rely on, and a stop that leaves the
// apps running for the next daemon to adopt.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite struct ServiceUnitTests {
    @Test func theUnitRunsUnprivilegedWithRoomForEveryConnectionTheProxyAdmits() throws {
        let unit = try String(contentsOfFile: packageRoot + "/systemd/slipway.service", encoding: .utf8)
        var settings: [String: [String]] = [:]
        for line in unit.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { settings[parts[0], default: []].append(parts[1]) }
        }
        let user = try #require(settings["User"]?.first)
        #expect(user != "root" && user != "0")
        #expect(settings["NoNewPrivileges"] == ["yes"])
        #expect(settings["KillMode"] == ["process"], "apps must outlive a restart of the daemon to be adopted")
        #expect(settings["UMask"] == ["0077"])
        // Each admitted connection may hold two descriptors (client and instance), plus the daemon's own.
        let files = try #require(settings["LimitNOFILE"]?.first.flatMap(Int.init))
        #expect(files >= 2 * ClientLimits().maxConnections + 1024)
        let data = try #require(settings["Environment"]?.first { $0.hasPrefix("SLIPWAY_DATA=") })
        #expect(data == "SLIPWAY_DATA=/var/lib/\(user)/data", "the README makes /var/lib/\(user) the user's home")
    }
}
