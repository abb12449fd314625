// An HTTP/2 connection's flushes wait for the end of the loop's turn and go out once, however many streams asked,
// and what was written before a close still leaves before it.
import NIOCore
import NIOEmbedded
import Testing

@testable import SlipwayProxy

@Suite struct SendBatchTests {
    /// Counts the flushes that reach the TLS handler's place.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    @Test func aConnectionIsFlushedOnceATurnAndBeforeItCloses() throws {
        let channel = EmbeddedChannel()
        let counter = FlushCounter()
        let batch = SendBatch.PerLoop().batch(on: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandlers([counter, SendBatch.ConnectionFlush(batch: batch)])

        for stream in 1...3 {
            channel.write(ByteBuffer(string: "answer of stream \(stream);"), promise: nil)
            channel.flush()
        }
        let early = try channel.readOutbound(as: ByteBuffer.self)
        #expect(counter.flushes == 0 && early == nil, "not before the turn ends")
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        var sent = ""
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: bytes) }
        #expect(sent == "answer of stream 1;answer of stream 2;answer of stream 3;")

        channel.write(ByteBuffer(string: "GOAWAY"), promise: nil)
        channel.flush()
        let closed = channel.close()
        let last = try channel.readOutbound(as: ByteBuffer.self)
        #expect(last.map { String(buffer: $0) } == "GOAWAY")
        channel.embeddedEventLoop.run()
        try closed.wait()
    }
}
