// HeadlessChromium: a headless Chromium for end-to-end tests, started and stopped by its process
// group, driving one page over the Chrome DevTools Protocol: navigate, evaluate, wait, click, screenshot.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public final class HeadlessChromium {
    /// Chromium's profile; every one of its processes has it on its command line.
    public let userDataDirectory: String
    /// Holds the profile and Chromium's log.
    private let directory: TemporaryDirectory
    private var process: ChildProcess?
    private var page: WebSocketClient?
    private var lastCommandID = 0

    private var log: String { directory.path + "/chromium.log" }

    /// Launches Chromium with a fresh profile and attaches to its page. `hostResolverRules` (such as
    /// "MAP shop.test 127.0.0.1") lets a test open its own host names.
    public init(hostResolverRules: String? = nil) throws {
        directory = try TemporaryDirectory("chromium")
        userDataDirectory = directory.path + "/profile"
        var arguments = [
            "--headless=new", "--user-data-dir=\(userDataDirectory)", "--remote-debugging-port=0", "--no-sandbox",
            "--no-first-run", "--disable-gpu", "--window-size=1000,700",
            // Containers often give /dev/shm only 64 MB, too little for Chromium; Debian's launcher means to
            // add this flag then, but its check fails when /dev/shm is listed twice.
            "--disable-dev-shm-usage",
            // No update checks or downloads to Google's servers while a test runs (Debian's launcher adds it
            // only without --enable-remote-extensions, which its own defaults set).
            "--disable-background-networking",
        ]
        if let hostResolverRules { arguments.append("--host-resolver-rules=\(hostResolverRules)") }
        // Opening about:blank makes sure there is a page target to attach to.
        arguments.append("about:blank")
        // Chromium's crash handlers leave the process group, and keep their database under XDG_CONFIG_HOME
        // (else in ~/.config): in the profile, they name it on their command line, so stop() finds them too.
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CONFIG_HOME"] = userDataDirectory
        do {
            let process = try Spawner.start(Command("chromium", arguments, environment: environment), logFile: log)
            self.process = process
            page = try attachToPage(port: try waitForDevToolsPort(of: process))
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Opens `url` and waits (up to 20 s) until its document has loaded.
    public func navigate(to url: String) throws {
        let deadline = ContinuousClock.now + .seconds(20)
        let previousLoader = try mainFrameLoader()
        let result = try call("Page.navigate", ["url": url])
        if let reason = result["errorText"] as? String {
            throw HeadlessChromiumError.navigationFailed(url: url, reason)
        }
        // Page.navigate may answer before the new document commits, when the old one is still complete:
        // wait for the main frame's loader to change (no loaderId: the navigation stayed in the document).
        while result["loaderId"] != nil, try mainFrameLoader() == previousLoader {
            guard ContinuousClock.now < deadline else {
                throw HeadlessChromiumError.timedOut(waitingFor: "\(url) to commit within 20 s")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        do {
            try waitUntil("document.readyState === 'complete'", timeout: deadline - .now)
        } catch HeadlessChromiumError.conditionNotMet {
            throw HeadlessChromiumError.timedOut(waitingFor: "\(url) to finish loading within 20 s")
        }
    }

    /// The value of `expression` in the page (a promise is awaited); nil for undefined and null. A JavaScript
    /// exception is thrown as `javaScriptException`.
    public func evaluate(_ expression: String) throws -> Any? {
        let value = try evaluate(expression, timeout: .seconds(20))["value"]
        return value is NSNull ? nil : value
    }

    /// Polls `expression` until it is the boolean true. A JavaScript exception, protocol error or slow answer
    /// counts as not yet (the page may be between documents); the last one is part of the error on timeout.
    public func waitUntil(_ expression: String, timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        var lastProblem: String?
        while true {
            do {
                // Each try gets at least 2 s, so that a last try right at the deadline can still answer.
                let result = try evaluate(expression, timeout: max(deadline - .now, .seconds(2)))
                if result["type"] as? String == "boolean", result["value"] as? Bool == true { return }
                lastProblem = nil
            } catch let error as HeadlessChromiumError {
                switch error {
                case .javaScriptException(_, let message), .protocolError(_, let message): lastProblem = message
                case .timedOut: lastProblem = error.description
                default: throw error
                }
            }
            guard ContinuousClock.now < deadline else {
                throw HeadlessChromiumError.conditionNotMet(expression: expression, timeout: timeout, lastProblem)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Clicks the centre of the first element matching `selector` with the mouse, as a user would: the
    /// page sees trusted mousedown, mouseup and click events, on whatever element is on top there.
    public func click(selector: String) throws {
        let literal = String(decoding: try JSONEncoder().encode(selector), as: UTF8.self)
        // Scrolled into view first, the mouse can only reach the viewport; instantly, or the box would be
        // where the element was before a smooth scroll.
        let centre = try evaluate(
            """
            (() => {
                const element = document.querySelector(\(literal));
                if (!element) return null;
                element.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
                const box = element.getBoundingClientRect();
                return box.width > 0 && box.height > 0 ? [box.x + box.width / 2, box.y + box.height / 2] : [];
            })()
            """
        )
        guard let point = (centre as? [Any])?.compactMap({ ($0 as? NSNumber)?.doubleValue }) else {
            throw HeadlessChromiumError.elementNotFound(selector: selector)
        }
        guard point.count == 2 else { throw HeadlessChromiumError.elementNotVisible(selector: selector) }
        for (type, button, buttons, clickCount) in [
            ("mouseMoved", "none", 0, 0), ("mousePressed", "left", 1, 1), ("mouseReleased", "left", 0, 1),
        ] {
            try call(
                "Input.dispatchMouseEvent",
                [
                    "type": type, "x": point[0], "y": point[1], "button": button, "buttons": buttons,
                    "clickCount": clickCount,
                ]
            )
        }
    }

    /// Writes a PNG of the viewport to `path`, creating its folder.
    public func screenshot(to path: String) throws {
        let result = try call("Page.captureScreenshot", ["format": "png"], timeout: .seconds(30))
        guard let base64 = result["data"] as? String, let png = Data(base64Encoded: base64) else {
            throw HeadlessChromiumError.malformedAnswer(method: "Page.captureScreenshot")
        }
        let file = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try png.write(to: file)
    }

    /// Stops Chromium: SIGTERM to its process group, SIGKILL for whatever is left after 3 s; returns once
    /// none of its processes is left, and removes the profile. Safe to call again.
    public func stop() {
        page = nil
        if let process {
            self.process = nil
            // Once reaped, the pid may belong to someone else: signal the group only while its leader runs.
            if process.exitStatus == nil { process.signalGroup(SIGTERM) }
            if !awaitNoneLeft(of: process, within: .seconds(3)) {
                if process.exitStatus == nil { process.signalGroup(SIGKILL) }
                awaitNoneLeft(of: process, within: .seconds(5), killing: true)
            }
        }
        directory.remove()
    }

    // MARK: Launching

    /// The DevTools port, from the DevToolsActivePort file Chromium writes into its profile.
    private func waitForDevToolsPort(of process: ChildProcess) throws -> Int {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let status = process.exitStatus {
                throw HeadlessChromiumError.launchFailed("chromium \(status)", log: logTail())
            }
            // The port on the first line, the browser target's path on the second; a file without its
            // newline yet is still being written.
            if let text = try? String(contentsOfFile: userDataDirectory + "/DevToolsActivePort", encoding: .utf8),
                let newline = text.firstIndex(of: "\n"), let port = Int(text[..<newline])
            {
                return port
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HeadlessChromiumError.launchFailed("no DevToolsActivePort within 30 s", log: logTail())
    }

    /// A DevTools connection to the page Chromium opened at launch.
    private func attachToPage(port: Int) throws -> WebSocketClient {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let list: HTTPAnswer
            do {
                list = try HTTPConnection(port: port).get("/json/list", host: "127.0.0.1:\(port)")
            } catch {
                throw HeadlessChromiumError.launchFailed(
                    "DevTools on port \(port) did not answer: \(error)",
                    log: logTail()
                )
            }
            let targets = (try? JSONSerialization.jsonObject(with: Data(list.body.utf8))) as? [[String: Any]] ?? []
            // The list also has "browser_ui" targets (the omnibox popup) that headless Chromium keeps.
            if let page = targets.first(where: { $0["type"] as? String == "page" }),
                let url = page["webSocketDebuggerUrl"] as? String
            {
                do {
                    return try WebSocketClient(url: url)
                } catch {
                    throw HeadlessChromiumError.launchFailed("could not connect to \(url): \(error)", log: logTail())
                }
            }
            guard ContinuousClock.now < deadline else {
                throw HeadlessChromiumError.launchFailed("no page target within 10 s: \(list.body)", log: logTail())
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    private func logTail() -> String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    // MARK: Stopping

    /// Waits until none of Chromium's processes is left; with `killing`, sends SIGKILL to those found meanwhile.
    @discardableResult
    private func awaitNoneLeft(of process: ChildProcess, within grace: Duration, killing: Bool = false) -> Bool {
        let deadline = ContinuousClock.now + grace
        while true {
            let left = processesLeft(of: process)
            if left.isEmpty { return true }
            guard ContinuousClock.now < deadline else { return false }
            if killing {
                for pid in left { kill(pid, SIGKILL) }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Live processes in Chromium's process group or naming its profile (any that left the group). A zombie
    /// does not count: it has ended, and only waits for its parent.
    private func processesLeft(of process: ChildProcess) -> [pid_t] {
        let profile = Data(userDataDirectory.utf8)
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry),
                let stat = FileManager.default.contents(atPath: "/proc/\(entry)/stat"),
                let commandLine = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { return nil }
            // After "pid (name) ": the state, the parent's pid, the process group.
            let text = String(decoding: stat, as: UTF8.self)
            guard let nameEnd = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: nameEnd)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z" else { return nil }
            return fields[2] == "\(process.pid)" || commandLine.range(of: profile) != nil ? pid : nil
        }
    }

    // MARK: DevTools protocol

    /// Sends one command to the page and returns its result, skipping the events and late answers that
    /// come before its answer.
    @discardableResult
    private func call(
        _ method: String,
        _ params: JSONObject = [:],
        timeout: Duration = .seconds(20)
    ) throws -> JSONObject {
        guard let page else { throw HeadlessChromiumError.stopped }
        lastCommandID += 1
        let id = lastCommandID
        let deadline = ContinuousClock.now + timeout
        do {
            let command = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
            try page.sendText(String(decoding: command, as: UTF8.self))
            while true {
                guard let message = try page.receiveMessage(before: deadline) else {
                    throw HeadlessChromiumError.disconnected(during: method)
                }
                guard let answer = (try? JSONSerialization.jsonObject(with: Data(message.payload))) as? JSONObject,
                    answer["id"] as? Int == id
                else { continue }
                if let error = answer["error"] as? JSONObject {
                    throw HeadlessChromiumError.protocolError(
                        method: method,
                        error["message"] as? String ?? "\(error)"
                    )
                }
                return answer["result"] as? JSONObject ?? [:]
            }
        } catch HTTPClientError.timedOut {
            throw HeadlessChromiumError.timedOut(waitingFor: "the answer to \(method) within \(timeout)")
        } catch HTTPClientError.closed {
            throw HeadlessChromiumError.disconnected(during: method)
        }
    }

    /// The remote object `expression` evaluates to, by value: its `type` and, unless undefined, its `value`.
    private func evaluate(_ expression: String, timeout: Duration) throws -> JSONObject {
        let result = try call(
            "Runtime.evaluate",
            ["expression": expression, "returnByValue": true, "awaitPromise": true],
            timeout: timeout
        )
        if let details = result["exceptionDetails"] as? JSONObject {
            // An Error has a description (message and stack); a thrown string or number only a value.
            let exception = details["exception"] as? JSONObject
            let message = (exception?["description"] ?? exception?["value"] ?? details["text"]).map { "\($0)" }
            throw HeadlessChromiumError.javaScriptException(expression: expression, message ?? "\(details)")
        }
        return result["result"] as? JSONObject ?? [:]
    }

    /// The loader of the main frame's current document: a new one for every document.
    private func mainFrameLoader() throws -> String? {
        let tree = try call("Page.getFrameTree")["frameTree"] as? JSONObject
        return (tree?["frame"] as? JSONObject)?["loaderId"] as? String
    }
}

private typealias JSONObject = [String: Any]

public enum HeadlessChromiumError: Error, CustomStringConvertible {
    case launchFailed(String, log: String)
    case stopped
    case disconnected(during: String)
    case timedOut(waitingFor: String)
    case protocolError(method: String, String)
    case javaScriptException(expression: String, String)
    case navigationFailed(url: String, String)
    case conditionNotMet(expression: String, timeout: Duration, String?)
    case elementNotFound(selector: String)
    case elementNotVisible(selector: String)
    case malformedAnswer(method: String)

    public var description: String {
        switch self {
        case .launchFailed(let reason, let log):
            "Chromium did not start: \(reason)\n--- chromium log (tail) ---\n\(log)"
        case .stopped: "Chromium was already stopped"
        case .disconnected(let method): "Chromium closed the DevTools connection during \(method)"
        case .timedOut(let what): "timed out waiting for \(what)"
        case .protocolError(let method, let message): "DevTools \(method) failed: \(message)"
        case .javaScriptException(let expression, let message): "JavaScript exception in `\(expression)`: \(message)"
        case .navigationFailed(let url, let reason): "could not open \(url): \(reason)"
        case .conditionNotMet(let expression, let timeout, let lastProblem):
            "`\(expression)` was not true within \(timeout)" + (lastProblem.map { " (last error: \($0))" } ?? "")
        case .elementNotFound(let selector): "no element matches \(selector)"
        case .elementNotVisible(let selector): "the element matching \(selector) has no size, so it cannot be clicked"
        case .malformedAnswer(let method): "DevTools answered \(method) with something unexpected"
        }
    }
}
