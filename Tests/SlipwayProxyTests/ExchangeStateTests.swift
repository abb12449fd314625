// Specifications for how one exchange on a client connection ends, without sockets: when the proxy may still
// answer in its own words and when it can only cut the connection, and what the connection does once the
// answer and the request are both over.
import Testing

@testable import SlipwayProxy

@Suite("Exchange state")
struct ExchangeStateTests {
    @Test("a keep-alive exchange reads the next request once both its answer and its request are over, in either order")
    func keepAliveWaitsForBothHalves() {
        var answerFirst = ExchangeState(keepAlive: true)
        answerFirst.answerStarts(clientAwaitsContinue: false)
        #expect(answerFirst.answerWritten() == .wait)  // an early answer: the body still arrives, and is dropped
        #expect(answerFirst.requestEnds() == .readNext)

        var requestFirst = ExchangeState(keepAlive: true)
        #expect(requestFirst.requestEnds() == .wait)
        requestFirst.answerStarts(clientAwaitsContinue: false)
        #expect(requestFirst.answerWritten() == .readNext)
    }

    @Test("a connection that closes after the answer lingers while the client still sends, and closes once it is done")
    func closingConnection() {
        var stillSending = ExchangeState(keepAlive: false)
        stillSending.answerStarts(clientAwaitsContinue: false)
        #expect(stillSending.answerWritten() == .lingerThenClose)

        var done = ExchangeState(keepAlive: false)
        _ = done.requestEnds()
        done.answerStarts(clientAwaitsContinue: false)
        #expect(done.answerWritten() == .close)
    }

    @Test("giving up before any answer lets the proxy answer; after the head went out, only a cut is honest")
    func givingUp() {
        var unanswered = ExchangeState(keepAlive: true)
        #expect(unanswered.giveUp(closing: false) == .answer)
        #expect(unanswered.keepAlive)

        var answering = ExchangeState(keepAlive: true)
        answering.answerStarts(clientAwaitsContinue: false)
        #expect(answering.giveUp(closing: false) == .cut)

        // An early answer is fully written while the body still streams; a body over the limit then cannot be
        // answered a second time on the same connection.
        var answered = ExchangeState(keepAlive: true)
        answered.answerStarts(clientAwaitsContinue: false)
        _ = answered.answerWritten()
        #expect(answered.giveUp(closing: true) == .cut)
    }

    @Test("a refusal that leaves the rest of the request unread closes the connection after its answer")
    func refusalCloses() {
        var tooLarge = ExchangeState(keepAlive: true)
        #expect(tooLarge.giveUp(closing: true) == .answer)
        tooLarge.answerStarts(clientAwaitsContinue: false)
        #expect(!tooLarge.keepAlive)
        #expect(tooLarge.answerWritten() == .lingerThenClose)
    }

    @Test("a client waiting for 100 Continue that is answered first never sends its body, so the connection closes")
    func answeredBeforeContinue() {
        var waiting = ExchangeState(keepAlive: true)
        waiting.answerStarts(clientAwaitsContinue: true)
        #expect(!waiting.keepAlive)
        #expect(waiting.answerWritten() == .lingerThenClose)

        // Once the body has arrived, the expectation no longer matters.
        var sent = ExchangeState(keepAlive: true)
        _ = sent.requestEnds()
        sent.answerStarts(clientAwaitsContinue: true)
        #expect(sent.keepAlive)
        #expect(sent.answerWritten() == .readNext)
    }

    @Test("an answer whose framing needs the connection closed ends it, whatever the client asked")
    func framingCloses() {
        var state = ExchangeState(keepAlive: true)
        _ = state.requestEnds()
        state.closeAfterAnswer()
        state.answerStarts(clientAwaitsContinue: false)
        #expect(state.answerWritten() == .close)
    }
}
