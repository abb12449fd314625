// ListeningSockets reads the kernel's TCP tables and a process tree's sockets: where a process listens.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

struct ListeningSocketsTests {
    @Test func addressesAreReadInTheKernelsByteOrder() {
        #expect(ListeningSockets.address(fromHex: "0100007F:1388") == "127.0.0.1:5000")
        #expect(ListeningSockets.address(fromHex: "00000000:1F90") == "0.0.0.0:8080")
        #expect(ListeningSockets.address(fromHex: "00000000000000000000000001000000:0050") == "[::1]:80")
        #expect(ListeningSockets.address(fromHex: "00000000000000000000000000000000:0016") == "[::]:22")
        #expect(ListeningSockets.address(fromHex: "zz:1") == nil)
        #expect(ListeningSockets.address(fromHex: "0100007F") == nil)
    }

    /// A child of its own, under a shell: this test process holds the sockets of every test that runs beside it.
    @Test func aProcessListeningIsFoundWhereItListensAndNowhereElse() async throws {
        let folder = try TemporaryDirectory("listen")
        defer { folder.remove() }
        let portFile = folder.path + "/port"
        let listener = try Spawner.start(
            Command(
                "/bin/sh",
                [
                    "-c",
                    "exec python3 -c 'import socket,sys,time; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); "
                        + "s.listen(); open(sys.argv[1], \"w\").write(str(s.getsockname()[1])); time.sleep(60)' \"$0\"",
                    portFile,
                ],
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"]
            ),
            logFile: folder.path + "/log"
        )
        defer { listener.signalGroup(SIGKILL) }
        #expect(await eventually { (try? String(contentsOfFile: portFile, encoding: .utf8))?.isEmpty == false })
        let port = try String(contentsOfFile: portFile, encoding: .utf8)
        #expect(ListeningSockets.of(processTree: listener.pid) == ["127.0.0.1:\(port)"])
        #expect(ListeningSockets.of(processTree: 1 << 22).isEmpty, "no such process")
    }

    /// /proc/net/tcp is read to its end: Foundation reads one page (26 sockets) of a file the kernel says is empty.
    @Test func aListenerPastTheFirstPageOfTheTableIsFound() async throws {
        let folder = try TemporaryDirectory("listen")
        defer { folder.remove() }
        let done = folder.path + "/done"
        let listener = try Spawner.start(
            Command(
                "/bin/sh",
                [
                    "-c",
                    "exec python3 -c 'import socket,sys,time\nheld = []\nfor _ in range(200):\n"
                        + "    s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); held.append(s)\n"
                        + "open(sys.argv[1], \"w\").write(\"ok\"); time.sleep(60)' \"$0\"",
                    done,
                ],
                environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"]
            ),
            logFile: folder.path + "/log"
        )
        defer { listener.signalGroup(SIGKILL) }
        #expect(await eventually { FileManager.default.fileExists(atPath: done) })
        #expect(ListeningSockets.of(processTree: listener.pid).count == 200)
    }
}
