// StaticSite: `slipway serve-static`, the tiny file server the static buildpack runs as its web process.
// It serves files under one folder and nothing outside it.
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `slipway serve-static`: a tiny static file server for the static buildpack.
public enum StaticSite {
    /// Serves `root`, which must lie inside `tree` (the app's release tree), until the task is cancelled or the
    /// process gets SIGTERM, then closes the listener and returns.
    public static func serve(root: String, within tree: String, host: String, port: Int, logger: Logger) async throws {
        let (stop, stopper) = AsyncStream<Void>.makeStream()
        signal(SIGTERM, SIG_IGN)  // handled below, as a stop request rather than the default exit
        let sigterm = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        sigterm.setEventHandler { stopper.finish() }
        sigterm.resume()
        defer { sigterm.cancel() }

        let listener = try await listen(root: root, within: tree, host: host, port: port, logger: logger)
        await withTaskCancellationHandler {
            for await _ in stop {}
        } onCancel: {
            stopper.finish()
        }
        try? await listener.close()
        logger.info("static site stopped")
    }

    /// Binds the listener; `serve` waits on it, tests close it themselves.
    static func listen(
        root: String,
        within tree: String,
        host: String,
        port: Int,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> any Channel {
        guard let resolvedRoot = realPath(root), isDirectory(resolvedRoot) else {
            throw ProxyError.staticRootMissing(path: root)
        }
        // Checked again here, not only at build time: the tree may have changed since, and a symbolic link on the
        // way to the root must not serve the host's files (the data directory, its keys) to every visitor.
        guard let resolvedTree = realPath(tree), isInside(resolvedRoot, resolvedTree) else {
            throw ProxyError.staticRootOutsideApp(path: root, resolved: resolvedRoot)
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(StaticFileHandler(root: resolvedRoot))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw ProxyError.cannotListen(host: host, port: port, reason: FailureReason.describe(error))
        }
        logger.info(
            "static site listening",
            metadata: [
                "static.root": "\(resolvedRoot)",
                "static.address": "\(host):\(channel.localAddress?.port ?? port)",
            ]
        )
        return channel
    }

    /// The file a request path names under `root` (already resolved), or why there is none.
    /// `..` components are refused outright, and the resolved file must still lie under the root, so
    /// neither a crafted path nor a symlink reaches outside it.
    static func resolve(path: Substring, root: String) -> Resolution {
        guard let decoded = String(path).removingPercentEncoding else { return .refused }
        let components = decoded.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains(where: { $0 == ".." || $0.contains("\0") }) { return .refused }
        var candidate = ([root] + components.map(String.init)).joined(separator: "/")
        if isDirectory(candidate) { candidate += "/index.html" }
        guard let resolved = realPath(candidate) else { return .missing }
        guard isInside(resolved, root) else { return .refused }
        guard !isDirectory(resolved) else { return .missing }
        return .file(resolved)
    }

    enum Resolution: Equatable {
        case file(String)
        case missing
        case refused
    }

    static func contentType(forPath path: String) -> String {
        let ext = path.split(separator: "/").last.flatMap { name in
            name.contains(".") ? name.split(separator: ".").last.map { $0.lowercased() } : nil
        }
        return switch ext {
        case "html", "htm": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "json", "map": "application/json"
        case "txt": "text/plain; charset=utf-8"
        case "xml": "application/xml"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "webp": "image/webp"
        case "ico": "image/x-icon"
        case "woff": "font/woff"
        case "woff2": "font/woff2"
        case "wasm": "application/wasm"
        case "pdf": "application/pdf"
        default: "application/octet-stream"
        }
    }

    /// Whether the resolved `path` is `folder` or lies under it.
    private static func isInside(_ path: String, _ folder: String) -> Bool {
        path == folder || path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

/// Answers GET and HEAD from files under the root; reads happen on NIO's thread pool, off the event loop.
private final class StaticFileHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let root: String
    private var request: HTTPRequestHead?

    init(root: String) {
        self.root = root
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let request else { return }
            self.request = nil
            answer(request, context: context)
        }
    }

    private func answer(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard request.method == .GET || request.method == .HEAD else {
            var response = LocalResponse.text(.methodNotAllowed, "Only GET and HEAD are allowed here.\n")
            response.headers.add(name: "Allow", value: "GET, HEAD")
            send(response, to: request, context: context)
            return
        }
        let requestPath = request.uri.requestPath
        switch StaticSite.resolve(path: requestPath, root: root) {
        case .refused:
            send(.text(.forbidden, "That path leads outside the site.\n"), to: request, context: context)
        case .missing:
            send(.text(.notFound, "Nothing is served at \(requestPath).\n"), to: request, context: context)
        case .file(let path):
            let loop = context.eventLoop
            NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
                try Data(contentsOf: URL(fileURLWithPath: path))
            }.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let contents):
                    self.send(file: contents, path: path, to: request, context: context)
                case .failure:
                    self.send(
                        .text(.notFound, "Nothing is served at \(requestPath).\n"),
                        to: request,
                        context: context
                    )
                }
            }
        }
    }

    private func send(file contents: Data, path: String, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers: HTTPHeaders = [
            "Content-Type": StaticSite.contentType(forPath: path),
            "Content-Length": String(contents.count),
        ]
        MessageRewriting.addConnectionHeader(to: &headers, clientVersion: request.version, close: !request.isKeepAlive)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))),
            promise: nil
        )
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: contents)))), promise: nil)
        }
        finish(request, context: context)
    }

    private func send(_ response: LocalResponse, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        context.write(
            wrapOutboundOut(.head(response.head(clientVersion: request.version, close: !request.isKeepAlive))),
            promise: nil
        )
        if response.sendsBody(to: request.method) {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        }
        finish(request, context: context)
    }

    private func finish(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !request.isKeepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
